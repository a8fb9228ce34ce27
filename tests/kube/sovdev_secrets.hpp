// stacks/sovdev's secrets made ready for one environment, as an operator (or the demo) makes them
// with `sovdev-hub secret` and `agents add`: a store key, a value for every reference the stack
// names, and one agent enrolled on the environment's channel. For tests that build the stack.
#pragma once

#include <string>
#include <vector>

#include "bundles/seal.hpp"
#include "bundles/sealed_record.hpp"
#include "sovdev.pb.h"

namespace sovdev::testing {

struct SovdevSecrets {
  std::string hub_db, store_key;
  std::vector<std::string> build_args;  // --db hub_db --store-key store_key
  seal::SecretBytes epoch_key;          // the channel's current one
  uint64_t epoch = 0;
};

// Everything under `dir`; the agent follows `channel`. Values are random hex (URL-safe, as the
// stack's README asks).
SovdevSecrets sovdev_secrets(const std::string& dir, const std::string& env,
                             const std::string& channel);

// The records of a built bundle with their sealed values opened and spliced in, as the agent
// hands them to its target.
void open_sealed(std::vector<pb::ResourceRecord>& records, const sealed::Place& place,
                 const seal::SecretBytes& epoch_key);

}  // namespace sovdev::testing
