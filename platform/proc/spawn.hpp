// What a child program gets from this process, for the two places that start one (the exec
// apply target and kubeconfig exec credential plugins): descriptors 0, 1 and 2 and nothing
// else, and the environment without the entries that speak for this process alone.
//
// Why: Paho C's sockets are not close-on-exec, so a child started with the agent's descriptors
// holds the agent's MQTT connection and, on tcp://, can speak MQTT as the agent; a child that
// finds NOTIFY_SOCKET/WATCHDOG_* can send READY=1 or WATCHDOG=1 to systemd in its name.
#pragma once

#include <spawn.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sovdev::proc {

// Environment names that belong to this process and never pass to a child: systemd's notify
// socket and watchdog, and socket activation's descriptors (which the child does not get).
bool is_private_environment_name(std::string_view name);

// This process's environment ("NAME=value" entries) less the private names above, with each
// of `set` put over it (replacing an entry of that name, or added).
std::vector<std::string> child_environment(
    const std::vector<std::pair<std::string, std::string>>& set = {});

// The same over a given environment (a null-terminated array, as `environ`), for tests.
std::vector<std::string> child_environment(
    char** env, const std::vector<std::pair<std::string, std::string>>& set);

// Adds to `actions`, after the dup2s onto 0/1/2 already in it, the closing of every descriptor
// above 2 in the child. 0 or an errno value.
int close_other_descriptors(posix_spawn_file_actions_t* actions);

// A child's output with what looks like a credential from its command line replaced by "***":
// a command that echoes its arguments on failure (sh -c, many CLIs' usage errors) must not
// carry a token from the agent's config into its status, its log and the hub. Hidden: the
// value of a flag named like a credential (--token=..., --client-key=...), and any word of the
// arguments 16 characters or longer that mixes letters and digits and is not a path; flags,
// names and what a script echoes as prose stay readable.
std::string hide_arguments(std::string text, const std::vector<std::string>& argv);

// `strings` as a null-terminated array of pointers into them, for posix_spawn's argv and envp.
std::vector<char*> c_strings(std::vector<std::string>& strings);

}  // namespace sovdev::proc
