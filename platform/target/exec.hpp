// The `exec` target: streams each version's objects as YAML documents to a command's stdin, for
// example `microk8s kubectl apply --server-side --field-manager=sovdev-agent -f -`.
//
// One command run per apply: begin() starts it, apply() writes one object at a time ("---\n" +
// the object's JSON, which is valid YAML), commit() closes its stdin and succeeds only when it
// exits 0. It cannot prune: it only ever sees the new version's objects, so objects a version
// drops stay in the cluster unless the command prunes by itself (kubectl's --prune with
// --applyset) or the `kube` target is used. ApplyResult::pruned is always 0, and every object
// counts as applied, since the command does not tell which ones changed.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "platform/target/target.hpp"

namespace sovdev::target {

struct ExecOptions {
  // For one whole run, from begin() to the command's exit; it is killed after that.
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};
};

// `command` is split into words as a shell would split a simple command line: blanks separate
// words, 'single' and "double" quotes and backslashes quote; no variables, globs, pipes or
// redirections (there is no shell). A bare program name is looked up in PATH.
[[nodiscard]] Expected<std::unique_ptr<Target>> make_exec_target(const std::string& command,
                                                                 ExecOptions options = {});

// The word splitting make_exec_target uses; Errc::invalid for an unterminated quote or an empty
// command.
[[nodiscard]] Expected<std::vector<std::string>> split_command(std::string_view command);

}  // namespace sovdev::target
