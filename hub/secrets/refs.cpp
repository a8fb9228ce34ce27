#include "hub/secrets/refs.hpp"

#include <exception>

#include <yaml-cpp/yaml.h>

#include "bundles/yaml/convert.hpp"
#include "hub/secrets/values.hpp"

namespace sovdev::hub::secrets {
namespace {

constexpr std::string_view kOutside =
    ": secret references are allowed only in a Secret's data or stringData";
// parse_manifests already refused deeper trees; this only keeps the walk bounded.
constexpr int kMaxDepth = 1000;

std::string scalar_of(const YAML::Node& map, std::string_view key) {
  auto found = yaml::detail::find_key(map, key);
  if (!found || !found->second.IsScalar()) return {};
  return found->second.Scalar();
}

class Scanner {
 public:
  explicit Scanner(std::string_view shown) : shown_(shown) {}

  Status document(const YAML::Node& doc) {
    if (!doc.IsMap()) return outside(doc, 0);
    const std::string kind = scalar_of(doc, "kind");
    auto items = yaml::detail::find_key(doc, "items");
    if (kind.ends_with("List") && items && items->second.IsSequence()) {
      for (const auto& pair : doc) {
        if (pair.first.IsScalar() && pair.first.Scalar() == "items") continue;
        SOVDEV_TRY(outside(pair.first, 0));
        SOVDEV_TRY(outside(pair.second, 0));
      }
      for (const auto& item : items->second) SOVDEV_TRY(object(item));
      return {};
    }
    return object(doc);
  }

  std::vector<SecretDoc> take() && { return std::move(docs_); }

 private:
  Status object(const YAML::Node& node) {
    if (!node.IsMap() || scalar_of(node, "apiVersion") != "v1" ||
        scalar_of(node, "kind") != "Secret") {
      return outside(node, 0);
    }
    SecretDoc doc;
    doc.source = yaml::detail::where(shown_, node.Mark());
    if (auto metadata = yaml::detail::find_key(node, "metadata")) {
      doc.name = scalar_of(metadata->second, "name");
      doc.namespace_ = scalar_of(metadata->second, "namespace");
    }
    for (const auto& pair : node) {
      const YAML::Node& key = pair.first;
      const bool values =
          key.IsScalar() && (key.Scalar() == "data" || key.Scalar() == "stringData");
      if (!values || !pair.second.IsMap()) {
        SOVDEV_TRY(outside(key, 0));
        SOVDEV_TRY(outside(pair.second, 0));
        continue;
      }
      for (const auto& entry : pair.second) {
        SOVDEV_TRY(outside(entry.first, 0));  // a key is a name, never a value
        if (!entry.second.IsScalar()) {
          SOVDEV_TRY(outside(entry.second, 0));
          continue;
        }
        SecretSite site;
        site.field = key.Scalar();
        site.key = entry.first.Scalar();
        site.line = static_cast<size_t>(entry.second.Mark().line) + 1;
        const std::string& value = entry.second.Scalar();
        SOVDEV_ASSIGN(auto pieces, split_at(entry.second, value));
        for (const auto& p : pieces) {
          if (p.is_ref) site.refs.push_back(p.ref);
        }
        site.literal = site.refs.empty() && !value.empty();
        doc.sites.push_back(std::move(site));
      }
    }
    docs_.push_back(std::move(doc));
    return {};
  }

  Expected<std::vector<ValuePiece>> split_at(const YAML::Node& node, std::string_view value) {
    auto pieces = split_value(value);
    if (!pieces) {
      return make_error(Errc::invalid,
                        yaml::detail::where(shown_, node.Mark()) + ": " + pieces.error().message);
    }
    return pieces;
  }

  // Any reference under `node` is out of place.
  Status outside(const YAML::Node& node, int depth) {
    if (depth > kMaxDepth) return {};
    if (node.IsScalar()) {
      if (!has_ref(node.Scalar())) return {};
      SOVDEV_TRY(split_at(node, node.Scalar()));  // a malformed one is named as such
      return make_error(Errc::invalid,
                        yaml::detail::where(shown_, node.Mark()) + std::string(kOutside));
    }
    if (node.IsMap()) {
      for (const auto& pair : node) {
        SOVDEV_TRY(outside(pair.first, depth + 1));
        SOVDEV_TRY(outside(pair.second, depth + 1));
      }
    } else if (node.IsSequence()) {
      for (const auto& item : node) SOVDEV_TRY(outside(item, depth + 1));
    }
    return {};
  }

  std::string_view shown_;
  std::vector<SecretDoc> docs_;
};

}  // namespace

bool SecretDoc::has_refs() const {
  for (const auto& s : sites) {
    if (!s.refs.empty()) return true;
  }
  return false;
}

Expected<std::vector<ValuePiece>> split_value(std::string_view value) {
  std::vector<ValuePiece> pieces;
  size_t at = 0;
  while (at < value.size()) {
    const size_t start = value.find(kRefMarker, at);
    if (start == std::string_view::npos) {
      pieces.push_back({value.substr(at), false, {}});
      break;
    }
    if (start > at) pieces.push_back({value.substr(at, start - at), false, {}});
    const size_t close = value.find('}', start);
    const size_t newline = value.find('\n', start);
    if (close == std::string_view::npos || newline < close) {
      return make_error(Errc::invalid,
                        "'${secret:' without a closing '}': write ${secret:NAME/KEY}");
    }
    const std::string_view whole = value.substr(start, close + 1 - start);
    const std::string_view inner =
        value.substr(start + kRefMarker.size(), close - start - kRefMarker.size());
    const size_t slash = inner.find('/');
    if (slash == std::string_view::npos) {
      return make_error(Errc::invalid, "'" + std::string(whole) +
                                           "' is not a secret reference: write "
                                           "${secret:NAME/KEY}");
    }
    SecretRef ref{std::string(inner.substr(0, slash)), std::string(inner.substr(slash + 1))};
    for (const std::string& why : {check_name(ref.name), check_key(ref.key)}) {
      if (!why.empty()) {
        return make_error(
            Errc::invalid,
            "'" + std::string(whole) + "' is not a secret reference (${secret:NAME/KEY}): " + why);
      }
    }
    pieces.push_back({whole, true, std::move(ref)});
    at = close + 1;
  }
  return pieces;
}

std::string mask_refs(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t at = 0;
  for (;;) {
    const size_t start = text.find(kRefMarker, at);
    const size_t close = start == std::string_view::npos ? start : text.find('}', start);
    if (close == std::string_view::npos) break;
    out.append(text.substr(at, start - at));
    out += "<sealed>";
    at = close + 1;
  }
  out.append(text.substr(at));
  return out;
}

Expected<std::vector<SecretDoc>> scan_file(std::string_view shown, std::string_view text) {
  // yaml-cpp reports by exception; the text already parsed once (parse_manifests), so these
  // are not expected, but none may leave here.
  try {
    Scanner scanner(shown);
    for (const YAML::Node& doc : YAML::LoadAll(std::string(text))) {
      if (!doc.IsNull()) SOVDEV_TRY(scanner.document(doc));
    }
    return std::move(scanner).take();
  } catch (const YAML::Exception& e) {
    return make_error(Errc::invalid, yaml::detail::where(shown, e.mark) + ": " + e.msg);
  } catch (const std::exception& e) {
    return make_error(Errc::internal, std::string(shown) + ": " + e.what());
  }
}

}  // namespace sovdev::hub::secrets
