// A software prefetch the optimizer keeps.
#pragma once

namespace sabot {

// Asks the CPU to start loading the cache line holding `p` (a hint; changes nothing). GCC takes a
// function whose only effect is __builtin_prefetch for one without side effects and deletes calls
// to it once inlined (seen with GCC 12: the RocksDB backend's prefetch compiled to a bare `ret`);
// the empty asm statement that takes the address is a side effect it keeps.
inline void prefetch(const void* p) {
  __builtin_prefetch(p);
  asm volatile("" : : "r"(p));
}

}  // namespace sabot
