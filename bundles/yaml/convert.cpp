#include "bundles/yaml/convert.hpp"

#include "bundles/yaml/scalar.hpp"

namespace sovdev::yaml::detail {
namespace {

// A cycle of aliases (`a: &x [*x]`) makes yaml-cpp build a cyclic graph; the depth limit ends
// the walk long before the stack does. Real objects nest a few dozen levels (CRD schemas).
constexpr int kMaxDepth = 1000;

std::string_view type_name(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: return "map";
    case YAML::NodeType::Sequence: return "sequence";
    case YAML::NodeType::Null: return "null";
    case YAML::NodeType::Scalar: return "scalar";
    case YAML::NodeType::Undefined: break;
  }
  return "undefined node";
}

class Converter {
 public:
  Converter(std::string_view path, size_t max_bytes, const YAML::Mark& start)
      : path_(path), max_bytes_(max_bytes), start_(start) {}

  Status convert(const YAML::Node& node, nlohmann::json& out, int depth) {
    if (depth > kMaxDepth) {
      return fail(node.Mark(), "nested deeper than " + std::to_string(kMaxDepth) +
                                   " levels (an alias that contains itself?)");
    }
    switch (node.Type()) {
      case YAML::NodeType::Map: return map(node, out, depth);
      case YAML::NodeType::Sequence: return sequence(node, out, depth);
      case YAML::NodeType::Scalar: return scalar(node, out);
      case YAML::NodeType::Null: out = nullptr; return charge(4);
      case YAML::NodeType::Undefined: break;
    }
    return fail(node.Mark(), "undefined YAML node");
  }

 private:
  Status map(const YAML::Node& node, nlohmann::json& out, int depth) {
    out = nlohmann::json::object();
    SOVDEV_TRY(charge(2));
    for (const auto& pair : node) {  // not it->first: yaml-cpp's operator-> yields a temporary
      const YAML::Node& key = pair.first;
      if (key.IsNull()) return fail(key.Mark(), "a map key must be a string, not null: quote it");
      if (!key.IsScalar()) {
        return fail(key.Mark(), "a map key must be a string, not a " + std::string(type_name(key)));
      }
      if (key.Tag() == "?" && key.Scalar() == "<<") {
        return fail(key.Mark(), "merge keys (<<) are not supported: write the keys out");
      }
      std::string name;
      if (Status s = resolve_key(key.Tag(), key.Scalar(), name); !s) {
        return fail(key.Mark(), s.error().message);
      }
      SOVDEV_TRY(charge(name.size() + 4));  // quotes, colon, comma
      // A repeated key replaces the earlier value, as it does for kubectl (go-yaml v2).
      SOVDEV_TRY(convert(pair.second, out[name], depth + 1));
    }
    return {};
  }

  Status sequence(const YAML::Node& node, nlohmann::json& out, int depth) {
    out = nlohmann::json::array();
    SOVDEV_TRY(charge(2));
    for (const auto& item : node) {
      SOVDEV_TRY(charge(1));
      out.push_back(nullptr);
      SOVDEV_TRY(convert(item, out.back(), depth + 1));
    }
    return {};
  }

  Status scalar(const YAML::Node& node, nlohmann::json& out) {
    if (Status s = resolve_scalar(node.Tag(), node.Scalar(), out); !s) {
      return fail(node.Mark(), s.error().message);
    }
    // A lower bound of the dumped size, so that the exact check after dumping decides near the
    // limit: strings lose their escapes here, numbers count one digit.
    return charge(out.is_string() ? node.Scalar().size() + 2 : 1);
  }

  Status charge(size_t bytes) {
    used_ += bytes;
    if (used_ <= max_bytes_) return {};
    return fail(start_, "object is larger than " + std::to_string(max_bytes_) +
                            " bytes as JSON (an alias bomb?); etcd refuses objects over 1.5 MiB");
  }

  Error fail(const YAML::Mark& mark, const std::string& what) const {
    return make_error(Errc::invalid, where(path_, mark) + ": " + what);
  }

  std::string_view path_;
  size_t max_bytes_;
  YAML::Mark start_;
  size_t used_ = 0;
};

}  // namespace

std::string where(std::string_view path, const YAML::Mark& mark) {
  return std::string(path) + ":" + std::to_string(mark.line + 1);
}

std::optional<std::pair<YAML::Node, YAML::Node>> find_key(const YAML::Node& map,
                                                          std::string_view key) {
  if (!map.IsMap()) return std::nullopt;
  size_t index = 0;
  std::optional<size_t> last;
  for (auto it = map.begin(); it != map.end(); ++it, ++index) {
    if (it->first.IsScalar() && it->first.Scalar() == key) last = index;
  }
  if (!last) return std::nullopt;
  auto it = map.begin();
  for (size_t i = 0; i < *last; ++i) ++it;
  return std::make_pair(it->first, it->second);
}

Status to_json(const YAML::Node& node, std::string_view path, size_t max_bytes,
               nlohmann::json& out) {
  Converter converter(path, max_bytes, node.Mark());
  return converter.convert(node, out, 0);
}

}  // namespace sovdev::yaml::detail
