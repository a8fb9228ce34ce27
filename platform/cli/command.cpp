#include "platform/cli/command.hpp"

#include <cstdio>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace sovdev::cli {

#ifndef SOVDEV_VERSION
#define SOVDEV_VERSION "0.0.0"
#endif

std::string version_line(const std::string& program) {
#if defined(__aarch64__)
  const char* arch = "arm64";
#elif defined(__x86_64__)
  const char* arch = "amd64";
#else
  const char* arch = "unknown";
#endif
  return program + " " + SOVDEV_VERSION + " (" + arch + ")";
}

void setup_logging() {
  // Logs go to stderr (stdout carries command output), each line written out at once so a
  // process killed with SIGKILL leaves a complete log behind.
  // Made directly, not through the registry, so a second call (tests run many commands in one
  // process) replaces the logger instead of throwing on the duplicate name.
  auto logger =
      std::make_shared<spdlog::logger>("sovdev", std::make_shared<spdlog::sinks::stderr_sink_st>());
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
}

int run(std::unique_ptr<CLI::App> app, Commands commands, int argc, char** argv) {
  setup_logging();
  try {
    app->parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app->exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app->exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app->exit(e);
  } catch (const CLI::ParseError& e) {
    app->exit(e);
    std::fprintf(stderr, "Run with --help for usage.\n");
    return static_cast<int>(Errc::usage);
  }
  std::function<Status()> chosen;
  for (auto& command : commands) {
    if (command.app->parsed()) {
      chosen = std::move(command.run);
      break;
    }
  }
  if (!chosen) {
    std::fprintf(stderr, "%s", app->help().c_str());
    return static_cast<int>(Errc::usage);
  }
  // The commands' options live in what their functions hold, not in the parser.
  const std::string program = app->get_name();
  commands.clear();
  app.reset();
  Status result = chosen();
  if (result) return 0;
  std::fprintf(stderr, "%s: error: %s\n", program.c_str(), result.error().message.c_str());
  return static_cast<int>(result.error().code);
}

}  // namespace sovdev::cli
