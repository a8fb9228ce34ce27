// Kubernetes manifests from YAML text: parsed as kubectl reads them, validated, put in apply order.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace sovdev::yaml {

struct Object {
  std::string api_version;  // "apps/v1", "v1"
  std::string kind;
  std::string namespace_;  // empty for cluster-scoped or unspecified
  std::string name;
  std::string json;    // the whole object as compact JSON, object keys sorted
  std::string source;  // "path:line" of the document start, for messages

  std::string group() const;  // "" for the core "v1", "apps" for "apps/v1"
};

struct ParseOptions {
  // etcd refuses objects over ~1.5 MiB anyway; counted while converting, so an alias bomb
  // stops here instead of filling memory.
  size_t max_object_bytes = 2 * 1024 * 1024;
  // All objects of one file together: a List whose items alias one big anchor would otherwise
  // multiply max_object_bytes by the number of items.
  size_t max_total_bytes = 64 * 1024 * 1024;
};

// Parses one file's text (no I/O: `path` is only used in messages and Object::source).
// Multi-document YAML; empty and comment-only documents are skipped; a kind ending in "List"
// with an `items` array (List, ConfigMapList, RoleList ...) is expanded into its items.
// Scalars resolve as kubectl's go-yaml v2 resolves them. Every object is validated.
// Errors are Errc::invalid with "path:line: what is wrong" (lines 1-based).
[[nodiscard]] Expected<std::vector<Object>> parse_manifests(std::string_view path,
                                                            std::string_view text,
                                                            const ParseOptions& options = {});

// Stable apply order: CustomResourceDefinitions, Namespaces, cluster-wide RBAC, then a Helm-like
// install order for built-in kinds, custom resources after built-in kinds, and admission
// webhooks/policies and APIServices last. Within one rank the input order is kept.
// Duplicates (same group, kind, namespace, name) are Errc::conflict naming both sources.
[[nodiscard]] Expected<std::vector<Object>> order_objects(std::vector<Object> objects);

// Lower applies first. Unknown kinds of built-in API groups rank after the known built-in kinds,
// kinds of other groups (custom resources) after those.
int apply_rank(std::string_view group, std::string_view kind);

// True for kinds the API server keeps outside namespaces (Namespace, ClusterRole, ...).
bool is_cluster_scoped(std::string_view group, std::string_view kind);

}  // namespace sovdev::yaml
