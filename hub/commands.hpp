// The sovdev-hub subcommands; each registers its options and the function that runs it.
#pragma once

#include <cstdio>
#include <string>

#include "platform/cli/command.hpp"

namespace sovdev::hub {

void add_keygen(CLI::App& app, cli::Commands& commands);
void add_trust(CLI::App& app, cli::Commands& commands);
void add_build(CLI::App& app, cli::Commands& commands);
void add_render(CLI::App& app, cli::Commands& commands);
void add_inspect(CLI::App& app, cli::Commands& commands);
void add_publish(CLI::App& app, cli::Commands& commands);
void add_serve(CLI::App& app, cli::Commands& commands);
void add_fleet_status(CLI::App& app, cli::Commands& commands);
void add_secret(CLI::App& app, cli::Commands& commands);
void add_agents(CLI::App& app, cli::Commands& commands);
// Staged rollouts, revocations and maintenance windows (hub/rollout/).
void add_rollout(CLI::App& app, cli::Commands& commands);
void add_revoke(CLI::App& app, cli::Commands& commands);
void add_window(CLI::App& app, cli::Commands& commands);

// Where a command's summary goes: stderr when the product itself goes to stdout (`--out -`, or a
// path naming the file stdout is, like /dev/stdout), so stdout holds the product alone; else
// stdout. (cli.cpp)
std::FILE* summary_stream(const std::string& out);

int main(int argc, char** argv);

}  // namespace sovdev::hub
