// The config's [images] table (docs/design-images.md): the quota of the image blob store.
// Part of agent/config.cpp's parse.
#include <cctype>
#include <string>

#include "agent/config.hpp"
#include "agent/config_reader.hpp"

namespace sovdev::agent::config_detail {
namespace {

constexpr uint64_t kMinQuota = uint64_t{1} << 20;

// "8GiB" → 8 << 30; binary (KiB, MiB, GiB, TiB) and decimal (KB, MB, GB, TB) units; 0 when the
// text is not a size.
uint64_t parse_size(const std::string& text) {
  size_t i = 0;
  uint64_t value = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    if (value > (UINT64_MAX - 9) / 10) return 0;
    value = value * 10 + static_cast<uint64_t>(text[i++] - '0');
  }
  if (i == 0) return 0;
  while (i < text.size() && text[i] == ' ') ++i;
  const std::string unit = text.substr(i);
  const struct {
    const char* name;
    uint64_t factor;
  } units[] = {{"", 1},
               {"B", 1},
               {"KiB", uint64_t{1} << 10},
               {"MiB", uint64_t{1} << 20},
               {"GiB", uint64_t{1} << 30},
               {"TiB", uint64_t{1} << 40},
               {"KB", 1000},
               {"MB", 1000 * 1000},
               {"GB", 1000 * 1000 * 1000},
               {"TB", uint64_t{1000} * 1000 * 1000 * 1000}};
  for (const auto& u : units) {
    if (unit != u.name) continue;
    if (value > UINT64_MAX / u.factor) return 0;
    return value * u.factor;
  }
  return 0;
}

}  // namespace

void read_images_config(Reader& r, const toml::table& root, AgentConfig& c) {
  const toml::table* t = r.table(root, "images");
  if (t == nullptr) return;
  const toml::node* node = t->get("quota");
  if (node == nullptr) return;
  const uint32_t line = Reader::line_of(*node);
  uint64_t quota = 0;
  if (node->is_integer()) {
    const int64_t value = node->as_integer()->get();
    quota = value > 0 ? static_cast<uint64_t>(value) : 0;
  } else if (node->is_string()) {
    quota = parse_size(node->as_string()->get());
    if (quota == 0) {
      r.problem(line, "images.quota",
                "'" + node->as_string()->get() +
                    "' is not a size: write bytes, or a number with KiB, MiB, GiB, TiB "
                    "(e.g. quota = \"8GiB\")");
      return;
    }
  } else {
    r.problem(line, "images.quota",
              std::string("must be a size (quota = \"8GiB\"), not ") + type_name(*node));
    return;
  }
  if (quota < kMinQuota) {
    r.problem(line, "images.quota",
              std::to_string(quota) + " bytes is below 1 MiB: no image would fit");
    return;
  }
  c.images.quota = quota;
}

std::string describe_images_config(const AgentConfig& c) {
  return "\n[images]\nquota = " + std::to_string(c.images.quota) + "  # bytes\n";
}

}  // namespace sovdev::agent::config_detail
