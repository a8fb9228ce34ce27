// References to secret values in a stack's manifests (docs/design-secrets.md): a value of a v1
// Secret's `data` or `stringData` names a value kept in hub.db as `${secret:NAME/KEY}`, alone or
// inside a longer string (`postgresql://app:${secret:pg/password}@db/app`). The build seals the
// whole value; `render` shows `<sealed>` in place of each reference. A reference anywhere else
// (a ConfigMap, an env value, metadata) is an error naming its file and line: its value would
// land in the bundle in plaintext.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace sovdev::hub::secrets {

inline constexpr std::string_view kRefMarker = "${secret:";

struct SecretRef {
  std::string name, key;
};

// One part of a value: literal text, or a reference.
struct ValuePiece {
  std::string_view text;  // the literal text, or the whole `${secret:...}` of a reference
  bool is_ref = false;
  SecretRef ref;
};

inline bool has_ref(std::string_view text) {
  return text.find(kRefMarker) != std::string_view::npos;
}

// A value cut into literal text and references. A malformed reference is Errc::invalid with a
// message that names it (references hold no secret) but carries no location.
[[nodiscard]] Expected<std::vector<ValuePiece>> split_value(std::string_view value);

// `text` with every reference replaced by `<sealed>` (what `render` shows).
std::string mask_refs(std::string_view text);

// One value of a Secret's data or stringData as the source file has it.
struct SecretSite {
  std::string field;  // "data" or "stringData"
  std::string key;
  size_t line = 0;
  std::vector<SecretRef> refs;  // empty: a literal value (or none)
  bool literal = false;         // a non-empty value without references
};

// One v1 Secret of a file.
struct SecretDoc {
  std::string source;  // "file:line" as yaml::Object::source names the object
  std::string name, namespace_;
  std::vector<SecretSite> sites;
  bool has_refs() const;
};

// Every v1 Secret of one file's text (which must already parse as manifests), with the line of
// each data value; Errc::invalid "file:line: ..." for a reference outside a Secret's data or
// stringData and for a malformed one.
[[nodiscard]] Expected<std::vector<SecretDoc>> scan_file(std::string_view shown,
                                                         std::string_view text);

}  // namespace sovdev::hub::secrets
