#include "hub/render.hpp"

#include <algorithm>
#include <filesystem>

// Parsed once per build and dropped; no exceptions (errors come back as values).
#define TOML_EXCEPTIONS 0
#define TOML_ENABLE_FORMATTERS 0
#include <toml++/toml.h>

#include "platform/fs/files.hpp"

namespace sovdev::hub {
namespace {

namespace fsys = std::filesystem;

constexpr size_t kMaxValuesFile = 1024 * 1024;

bool is_name_start(char c) {
  return c >= 'A' && c <= 'Z';
}
bool is_name_char(char c) {
  return is_name_start(c) || (c >= '0' && c <= '9') || c == '_';
}

std::string at(std::string_view file, const toml::node& node) {
  return std::string(file) + ":" + std::to_string(node.source().begin.line);
}

// [build] arch / exclude: arrays of strings.
Status read_strings(std::string_view file, const toml::node& node, std::string_view key,
                    std::vector<std::string>& out) {
  const toml::array* array = node.as_array();
  if (array == nullptr) {
    return make_error(Errc::invalid, at(file, node) + ": build." + std::string(key) +
                                         " must be an array of strings");
  }
  for (const toml::node& item : *array) {
    if (!item.is_string()) {
      return make_error(Errc::invalid,
                        at(file, item) + ": build." + std::string(key) + " must hold strings only");
    }
    out.push_back(item.as_string()->get());
  }
  return {};
}

Status read_build(std::string_view file, const toml::table& build, const std::string& dir,
                  StackEnv& env) {
  for (auto&& [key, node] : build) {
    if (key.str() == "arch") {
      SOVDEV_TRY(read_strings(file, node, "arch", env.arch));
    } else if (key.str() == "exclude") {
      SOVDEV_TRY(read_strings(file, node, "exclude", env.exclude));
      for (const auto& path : env.exclude) {
        std::error_code ec;
        if (path.empty() || path.front() == '/' || path.find("..") != std::string::npos ||
            !fsys::exists(fsys::path(dir) / "base" / path, ec)) {
          return make_error(Errc::invalid, at(file, node) + ": build.exclude: '" + path +
                                               "' is not a file or folder under base/");
        }
      }
    } else {
      return make_error(Errc::invalid, at(file, node) + ": unknown key 'build." +
                                           std::string(key.str()) + "' (arch, exclude)");
    }
  }
  return {};
}

Status read_values(std::string_view file, const toml::table& values, StackEnv& env) {
  for (auto&& [key, node] : values) {
    const std::string name(key.str());
    if (name.empty() || !is_name_start(name.front()) ||
        !std::all_of(name.begin(), name.end(), is_name_char)) {
      return make_error(Errc::invalid, at(file, node) + ": value name '" + name +
                                           "' must be upper case letters, digits and _");
    }
    if (const auto* s = node.as_string()) {
      env.values[name] = s->get();
    } else if (const auto* i = node.as_integer()) {
      env.values[name] = std::to_string(i->get());
    } else if (const auto* b = node.as_boolean()) {
      env.values[name] = b->get() ? "true" : "false";
    } else {
      return make_error(Errc::invalid, at(file, node) + ": value " + name +
                                           " must be a string, a whole number or a boolean");
    }
  }
  return {};
}

}  // namespace

bool is_stack_dir(const std::string& dir) {
  std::error_code ec;
  return fsys::is_directory(fsys::path(dir) / "base", ec) &&
         fsys::is_directory(fsys::path(dir) / "env", ec);
}

std::string stack_name_of(const std::string& dir) {
  fsys::path p = fsys::path(dir).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();
  if (p.filename() == "." || p.empty()) p = fsys::current_path();
  return p.filename().string();
}

Expected<StackEnv> load_stack_env(const std::string& dir, const std::string& env_name) {
  const bool plain = !env_name.empty() && std::all_of(env_name.begin(), env_name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
  if (!plain) {
    return make_error(Errc::usage,
                      "environment '" + env_name + "' must be lower case letters, digits, - or _");
  }
  StackEnv env;
  env.name = env_name;
  env.file = "env/" + env_name + ".toml";
  const std::string path = (fsys::path(dir) / env.file).string();
  std::error_code ec;
  if (!fsys::exists(path, ec)) {
    std::string known;
    for (const auto& e : fsys::directory_iterator(fsys::path(dir) / "env", ec)) {
      if (e.path().extension() == ".toml") known += " " + e.path().stem().string();
    }
    return make_error(Errc::not_found, "no values file " + path + " (environments:" +
                                           (known.empty() ? " none" : known) + ")");
  }
  SOVDEV_ASSIGN(std::string text, fs::read_file(path, kMaxValuesFile));
  toml::parse_result parsed = toml::parse(text, std::string_view(env.file));
  if (!parsed) {
    const auto& e = parsed.error();
    return make_error(Errc::invalid, env.file + ":" + std::to_string(e.source().begin.line) + ": " +
                                         std::string(e.description()));
  }
  for (auto&& [key, node] : parsed.table()) {
    const auto* table = node.as_table();
    if (table == nullptr || (key.str() != "build" && key.str() != "values")) {
      return make_error(Errc::invalid, at(env.file, node) + ": unknown key '" +
                                           std::string(key.str()) +
                                           "' (the file has tables [build] and [values])");
    }
    if (key.str() == "build") {
      SOVDEV_TRY(read_build(env.file, *table, dir, env));
    } else {
      SOVDEV_TRY(read_values(env.file, *table, env));
    }
  }
  return env;
}

bool is_excluded(const StackEnv& env, std::string_view relative_path) {
  return std::any_of(env.exclude.begin(), env.exclude.end(), [&](const std::string& e) {
    std::string_view prefix(e);
    while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
    return relative_path == prefix || (relative_path.size() > prefix.size() &&
                                       relative_path.substr(0, prefix.size()) == prefix &&
                                       relative_path[prefix.size()] == '/');
  });
}

namespace {

// A value may name other values (`AUTHENTIK_HOST = "auth.${BASE_DOMAIN}"`), so that a site
// changes its domain in one line. Nesting deeper than this is a cycle in all but name.
constexpr int kMaxValueDepth = 8;

Expected<std::string> render_at(std::string_view shown, std::string_view text, const StackEnv& env,
                                std::vector<std::string>* used, int depth) {
  std::string out;
  out.reserve(text.size());
  size_t line = 1;
  auto fail = [&](const std::string& why) {
    return make_error(Errc::invalid, std::string(shown) + ":" + std::to_string(line) + ": " + why);
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') line++;
    if (c != '$') {
      out += c;
      continue;
    }
    if (text.substr(i, 3) == "$${") {  // escaped: a literal ${
      out += "${";
      i += 2;
      continue;
    }
    if (text.substr(i, 2) != "${") {
      out += c;
      continue;
    }
    const size_t close = text.find_first_of("}\n", i + 2);
    if (close == std::string_view::npos || text[close] != '}') {
      return fail("'${' without a closing '}' on the same line (write $${ for a literal ${)");
    }
    const std::string_view inner = text.substr(i + 2, close - i - 2);
    if (inner.starts_with("secret:")) {  // a secret reference: the build resolves and seals it
      out.append(text.substr(i, close + 1 - i));
      i = close;
      continue;
    }
    const size_t sep = inner.find(":-");
    const std::string_view name = inner.substr(0, sep);
    if (name.empty() || !is_name_start(name.front()) ||
        !std::all_of(name.begin(), name.end(), is_name_char)) {
      return fail("'${" + std::string(inner) +
                  "}' is not a placeholder: names are upper case letters, digits and _ "
                  "(write $${ for a literal ${)");
    }
    if (used) used->emplace_back(name);
    if (auto v = env.values.find(std::string(name)); v != env.values.end()) {
      if (v->second.find("${") == std::string::npos) {
        out += v->second;
      } else if (depth >= kMaxValueDepth) {
        return fail("value " + v->first + " in " + env.file + " names values " +
                    std::to_string(kMaxValueDepth) + " deep: is there a cycle?");
      } else {
        auto nested = render_at(env.file + " value " + v->first, v->second, env, used, depth + 1);
        if (!nested) return fail(nested.error().message);
        out += *nested;
      }
    } else if (sep != std::string_view::npos) {
      out += inner.substr(sep + 2);
    } else {
      return fail("${" + std::string(name) + "} is not defined in " + env.file +
                  " and has no default (${" + std::string(name) + ":-default})");
    }
    i = close;
  }
  return out;
}

}  // namespace

Expected<std::string> render_text(std::string_view shown, std::string_view text,
                                  const StackEnv& env, std::vector<std::string>* used) {
  return render_at(shown, text, env, used, 0);
}

}  // namespace sovdev::hub
