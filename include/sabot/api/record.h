// Typed rows for user programs: SABOT_RECORD(Type, field...), record_schema<T>(), RowReader,
// RowWriter and read_rows. The mapping itself lives in sabot/columnar/record.h (operators use it
// too and must not depend on the API); this header is what a user program includes.
#pragma once

#include "sabot/columnar/record.h"
