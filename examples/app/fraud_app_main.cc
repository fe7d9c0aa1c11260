// `fraud_app`: the FRAUD.md detector as an App with its own command line, e.g.
//   fraud_app send bank-transactions --file tx.jsonl --key-field account_number --state-dir st
//   fraud_app worker --state-dir st --checkpoint-dir chk --until-done --topic-out
//   fraud-alerts=a.jsonl fraud_app table accounts --checkpoint-dir chk --key 123456
#include "fraud_app.h"

int main(int argc, char** argv) {
  sabot::app::App app("fraud-app");
  sabot::fraud_app::define_fraud_app(app);
  return app.main(argc, argv);
}
