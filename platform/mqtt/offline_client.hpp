// A Client that is never connected, for the agent's offline commands (`apply`): the daemon's
// status publishes are refused as they are while a broker is unreachable.
#pragma once

#include <memory>

#include "platform/mqtt/client.hpp"

namespace sovdev::mqtt {

std::unique_ptr<Client> make_offline_client();

}  // namespace sovdev::mqtt
