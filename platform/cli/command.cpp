#include "platform/cli/command.hpp"

#include <cstdio>

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

int run(CLI::App& app, const Commands& commands, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    std::fprintf(stderr, "Run with --help for usage.\n");
    return static_cast<int>(Errc::usage);
  }
  for (const auto& command : commands) {
    if (!command.app->parsed()) continue;
    Status result = command.run();
    if (result) return 0;
    std::fprintf(stderr, "%s: error: %s\n", app.get_name().c_str(), result.error().message.c_str());
    return static_cast<int>(result.error().code);
  }
  std::fprintf(stderr, "%s", app.help().c_str());
  return static_cast<int>(Errc::usage);
}

}  // namespace sovdev::cli
