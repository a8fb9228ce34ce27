// The sovdev-hub subcommands; each registers its options and the function that runs it.
#pragma once

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

int main(int argc, char** argv);

}  // namespace sovdev::hub
