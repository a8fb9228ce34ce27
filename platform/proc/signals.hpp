// SIGTERM and SIGINT as a flag the main loop polls: the daemons stop between two steps,
// never in the middle of a SQLite transaction.
#pragma once

namespace sovdev::proc {

void install_stop_handlers();
bool stop_requested();

}  // namespace sovdev::proc
