// The shape both programs' command lines share: CLI11 subcommands, each with a function that
// returns a Status; errors print as "<program>: <message>" and exit with the error's code.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace sovdev::cli {

struct Command {
  CLI::App* app = nullptr;
  std::function<Status()> run;
};

using Commands = std::vector<Command>;

// Parses argv, runs the chosen command, reports any error. Returns the process exit status.
// The command line's objects are freed before the command runs, so a command that runs for
// months (the agent's daemon) does not keep them, nor the heap pages they were spread over.
int run(std::unique_ptr<CLI::App> app, Commands commands, int argc, char** argv);

// Logs to stderr, one line at a time.
void setup_logging();

// "<program> <version> (<arch>)", for --version.
std::string version_line(const std::string& program);

}  // namespace sovdev::cli
