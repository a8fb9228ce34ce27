// The sovdev-agent subcommands; each registers its options and the function that runs it.
#pragma once

#include <string>

#include "platform/cli/command.hpp"
#include "platform/store/sqlite.hpp"

namespace sovdev::agent {

void add_verify(CLI::App& app, cli::Commands& commands);
void add_import(CLI::App& app, cli::Commands& commands);
void add_status(CLI::App& app, cli::Commands& commands);
void add_run(CLI::App& app, cli::Commands& commands);
void add_check_config(CLI::App& app, cli::Commands& commands);
void add_apply(CLI::App& app, cli::Commands& commands);
void add_retry(CLI::App& app, cli::Commands& commands);
void add_keygen(CLI::App& app, cli::Commands& commands);
void add_images(CLI::App& app, cli::Commands& commands);

// The cache database inside a state folder, created on first use.
std::string database_path(const std::string& state_dir);
Expected<store::Database> open_state(const std::string& state_dir, bool create);

int main(int argc, char** argv);

}  // namespace sovdev::agent
