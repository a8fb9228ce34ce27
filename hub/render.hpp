// Rendering a stack for one environment: a stack folder holds `base/` (manifests with
// `${NAME}` placeholders) and `env/<env>.toml` (the environment's architectures, the base
// paths it leaves out, and its values). Each difference between environments is stated once,
// in its values file; the base stays the same for all of them.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace sovdev::hub {

struct StackEnv {
  std::string name;                           // dev, staging, prod, edge
  std::string file;                           // the values file, as messages name it
  std::vector<std::string> arch;              // [build] arch
  std::vector<std::string> exclude;           // [build] exclude: paths relative to base/
  std::map<std::string, std::string> values;  // [values]
};

// A folder is a stack folder when it holds base/ and env/.
bool is_stack_dir(const std::string& dir);
// The stack a stack folder holds is named after the folder.
std::string stack_name_of(const std::string& dir);

// Reads <dir>/env/<env>.toml. Unknown keys, values that are not strings, whole numbers or
// booleans, and exclude paths that name nothing under base/ are errors with their line.
[[nodiscard]] Expected<StackEnv> load_stack_env(const std::string& dir, const std::string& env);

// Whether a file under base/ (path relative to base/, '/'-separated) is left out.
bool is_excluded(const StackEnv& env, std::string_view relative_path);

// Replaces `${NAME}` by the environment's value and `${NAME:-default}` by the value or the
// default; `$${` stays a literal `${`; any other `$` is left alone (shell scripts keep `$VAR`).
// A secret reference `${secret:NAME/KEY}` passes through untouched: the build resolves it
// (hub/secrets/refs.hpp).
// A value may itself name values (`HOST = "auth.${BASE_DOMAIN}"`), rendered the same way up to a
// few levels deep (a cycle is an error). An undefined name without a default is an error naming
// `shown:line`. `used` collects the names that were looked up, those named by values included.
[[nodiscard]] Expected<std::string> render_text(std::string_view shown, std::string_view text,
                                                const StackEnv& env,
                                                std::vector<std::string>* used = nullptr);

}  // namespace sovdev::hub
