// The daemon's part around one BlobFetch, for the tests and the child process they kill: the
// answers for this blob handed over, a flush after each burst, ticks, reconnects.
#pragma once

#include <chrono>
#include <string>

#include "agent/images/blob_fetch.hpp"
#include "platform/mqtt/client.hpp"

namespace sovdev::testing {

// Runs until the fetch ends or `limit` passes: "" when it ended done, else why not.
std::string run_blob_fetch(agent::images::BlobFetch& fetch, mqtt::Client& client,
                           const agent::FetchSettings& settings, std::chrono::milliseconds limit);

}  // namespace sovdev::testing
