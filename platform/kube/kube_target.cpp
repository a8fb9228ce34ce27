#include "platform/kube/kube_target.hpp"

#include <string.h>

#include <algorithm>
#include <map>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "bundles/hash.hpp"
#include "platform/kube/discovery.hpp"
#include "platform/kube/health.hpp"
#include "platform/kube/skim.hpp"
#include "platform/store/kube_inventory.hpp"
#include "platform/store/transaction.hpp"

namespace sovdev::kube {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using Key = std::tuple<std::string, std::string, std::string, std::string>;  // group kind ns name

constexpr const char* kApplyContentType = "application/apply-patch+yaml";
constexpr const char* kCrdKind = "CustomResourceDefinition";
constexpr const char* kCrdGroup = "apiextensions.k8s.io";

std::string group_of(const std::string& api_version) {
  const auto slash = api_version.find('/');
  return slash == std::string::npos ? std::string() : api_version.substr(0, slash);
}

std::string describe(const std::string& kind, const std::string& ns, const std::string& name) {
  return kind + " " + (ns.empty() ? name : ns + "/" + name);
}

std::string describe(const pb::ResourceRecord& r) {
  std::string out = describe(r.kind(), r.namespace_(), r.name());
  if (!r.source().empty()) out += " (" + r.source() + ")";
  return out;
}

// "Deployment.apps", or "ConfigMap" for the core group: the ApplySet annotation's spelling.
std::string group_kind(const std::string& group, const std::string& kind) {
  return group.empty() ? kind : kind + "." + group;
}

std::string joined(const std::set<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ",") + i;
  return out;
}

std::string label_of(const json& object, const std::string& key, const char* where) {
  const json::json_pointer at(std::string("/metadata/") + where);
  if (!object.contains(at) || !object.at(at).is_object()) return {};
  const json& map = object.at(at);
  auto it = map.find(key);
  return it != map.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Namespaces and CRDs go last when deleting, so nothing is removed under its own objects.
int delete_rank(const store::KubeObject& o) {
  if (o.api_group.empty() && o.kind == "Namespace") return 2;
  if (o.api_group == kCrdGroup && o.kind == kCrdKind) return 1;
  return 0;
}

class KubeTarget final : public target::Target {
 public:
  KubeTarget(store::Database& db, std::unique_ptr<ApiClient> api, KubeTargetOptions options)
      : db_(db), api_(std::move(api)), discovery_(*api_), options_(std::move(options)) {}

  Status begin(const target::ApplyBegin& version) override {
    if (version.digest.size() != kDigestSize) {
      return make_error(Errc::internal, "kube target: begin needs the bundle's digest");
    }
    version_ = version;
    parent_name_ = "applyset-" + version.stack;
    id_ = applyset_id(parent_name_, options_.applyset_namespace);
    applied_.clear();
    pending_.clear();
    crds_.clear();
    counts_ = {};
    store::KubeInventory inventory(db_);
    SOVDEV_ASSIGN(auto previous, inventory.list(version_.stack));
    previous_.clear();
    std::set<std::string> kinds, namespaces;
    for (auto& o : previous) {
      kinds.insert(group_kind(o.api_group, o.kind));
      if (!o.namespace_.empty()) namespaces.insert(o.namespace_);
      previous_.emplace(Key{o.api_group, o.kind, o.namespace_, o.name}, std::move(o));
    }
    // kubectl's order: the parent names a superset of the members before any is applied.
    if (auto ok = write_parent(kinds, namespaces); !ok) {
      return std::move(ok).error().context("prepare the ApplySet of " + version.stack);
    }
    return {};
  }

  Status apply(const pb::ResourceRecord& r) override {
    auto applied = apply_one(r);
    if (!applied) return std::move(applied).error().context("apply " + describe(r));
    return {};
  }

  Expected<target::ApplyResult> commit() override {
    SOVDEV_TRY(wait_healthy());
    SOVDEV_TRY(prune());
    std::set<std::string> kinds, namespaces;
    for (const auto& [group, kind, ns, name] : applied_) {
      kinds.insert(group_kind(group, kind));
      if (!ns.empty()) namespaces.insert(ns);
    }
    if (auto ok = write_parent(kinds, namespaces); !ok) {
      return std::move(ok).error().context("update the ApplySet of " + version_.stack);
    }
    return counts_;
  }

  void abort() override {
    // What was applied stays in the inventory: a rollback's prune removes what the failed
    // version added.
    pending_.clear();
  }

 private:
  struct Pending {
    std::string path;
    std::string what;
  };

  // The live object's metadata, spec and status, nothing else: a 1 MiB ConfigMap's data is
  // skipped as it arrives rather than held only to be thrown away.
  Expected<json> server_apply(const std::string& path, std::string body) {
    const std::string url = path + "?fieldManager=" + options_.field_manager + "&force=true";
    static const std::set<std::string> keep = {"apiVersion", "kind", "metadata", "spec", "status"};
    auto sent = api_->request("PATCH", url, body, kApplyContentType, &keep);
    // The request's copy goes before the answer's arrives, zeroed first: a Secret's body holds
    // its values (docs/design-secrets.md).
    explicit_bzero(body.data(), body.size());
    body = std::string();
    if (!sent) return std::move(sent).error();
    HttpResponse response = std::move(*sent);
    if (response.code != 200 && response.code != 201) return api_error("PATCH", path, response);
    json live = json::parse(response.body, nullptr, false);
    if (!live.is_object()) {
      return make_error(Errc::invalid, "PATCH " + path + ": the answer is not a JSON object");
    }
    return live;
  }

  Status write_parent(const std::set<std::string>& kinds, const std::set<std::string>& namespaces) {
    json ns = {{"apiVersion", "v1"},
               {"kind", "Namespace"},
               {"metadata", {{"name", options_.applyset_namespace}}}};
    SOVDEV_TRY(server_apply("/api/v1/namespaces/" + options_.applyset_namespace, ns.dump()));
    std::set<std::string> others = namespaces;
    others.erase(options_.applyset_namespace);
    json parent = {{"apiVersion", "v1"},
                   {"kind", "ConfigMap"},
                   {"metadata",
                    {{"name", parent_name_},
                     {"namespace", options_.applyset_namespace},
                     {"labels", {{kApplySetIdLabel, id_}}},
                     {"annotations",
                      {{kToolingAnnotation, "sovdev-agent/v1"},
                       {kGroupKindsAnnotation, joined(kinds)},
                       {kNamespacesAnnotation, joined(others)}}}}}};
    auto written = server_apply(
        "/api/v1/namespaces/" + options_.applyset_namespace + "/configmaps/" + parent_name_,
        parent.dump());
    if (!written) return std::move(written).error();
    return {};
  }

  Expected<ResourceType> type_of(const pb::ResourceRecord& r) {
    auto type = discovery_.find(r.api_version(), r.kind());
    if (type || type.error().code != Errc::not_found) return type;
    // A custom resource of a CRD this apply has just created: its kind is served once the CRD
    // is Established.
    auto crd = crds_.find(group_of(r.api_version()) + "/" + r.kind());
    if (crd == crds_.end()) return type;
    SOVDEV_TRY(wait_established(crd->second));
    discovery_.forget(r.api_version());
    return discovery_.find(r.api_version(), r.kind());
  }

  Status wait_established(const std::string& crd_name) {
    const std::string path =
        "/apis/" + std::string(kCrdGroup) + "/v1/customresourcedefinitions/" + crd_name;
    const auto deadline = Clock::now() + options_.crd_timeout;
    std::string why = "not established";
    for (;;) {
      SOVDEV_ASSIGN(HttpResponse response, api_->get(path));
      if (response.code != 200) return api_error("GET", path, response);
      const HealthResult health = assess(json::parse(response.body, nullptr, false));
      if (health.state == Health::current) return {};
      if (health.state == Health::failed) {
        return make_error(Errc::unhealthy,
                          "CustomResourceDefinition " + crd_name + ": " + health.message);
      }
      why = health.message;
      if (Clock::now() >= deadline) break;
      beat();  // the health gate may wait minutes: the agent's loop runs meanwhile
      std::this_thread::sleep_for(options_.poll_interval);
    }
    return make_error(Errc::unhealthy,
                      "CustomResourceDefinition " + crd_name + " not established within " +
                          std::to_string(options_.crd_timeout.count() / 1000) + " s: " + why);
  }

  Status apply_one(const pb::ResourceRecord& r) {
    SOVDEV_ASSIGN(ResourceType type, type_of(r));
    std::string ns = type.namespaced ? r.namespace_() : std::string();
    // Only the metadata is parsed and rewritten; the rest of the record's text (a 1 MiB
    // ConfigMap's data) is copied once, into the request.
    const std::string_view text = r.json();
    const auto span = find_member(text, "metadata");
    if (!span) return make_error(Errc::invalid, "the record is not a JSON object with metadata");
    json metadata =
        json::parse(text.substr(span->first, span->second - span->first), nullptr, false);
    if (!metadata.is_object())
      return make_error(Errc::invalid, "the record's metadata is not an object");
    metadata["labels"][kPartOfLabel] = id_;
    if (type.namespaced && ns.empty()) {
      ns = "default";  // kubectl's choice for a namespaced object that names none
      metadata["namespace"] = ns;
    }
    const std::string meta = metadata.dump();
    std::string body;
    body.reserve(text.size() + meta.size());
    body.append(text.substr(0, span->first)).append(meta).append(text.substr(span->second));
    const std::string path = resource_path(type, ns, r.name());
    SOVDEV_ASSIGN(json live, server_apply(path, std::move(body)));
    const std::string group = group_of(r.api_version());
    const std::string rv = live.value(json::json_pointer("/metadata/resourceVersion"), "");
    const Key key{group, r.kind(), ns, r.name()};
    auto before = previous_.find(key);
    // An API server keeps the resourceVersion when an apply changes nothing and moves it when
    // anything changes (the generation moves only with the spec): the object changed since our
    // last apply left it (a hand edit this apply undid, or a status write) or with this one.
    if (before != previous_.end() && !rv.empty() && before->second.resource_version == rv) {
      counts_.unchanged++;
    } else {
      counts_.add_changed(describe(r.kind(), ns, r.name()));
    }
    store::KubeInventory inventory(db_);
    SOVDEV_TRY(inventory.record(
        version_.stack, {group, r.kind(), ns, r.name(), r.api_version(), version_.digest, rv}));
    applied_.insert(key);
    if (group == kCrdGroup && r.kind() == kCrdKind) {
      const std::string crd_group = live.value(json::json_pointer("/spec/group"), "");
      const std::string crd_kind = live.value(json::json_pointer("/spec/names/kind"), "");
      crds_[crd_group + "/" + crd_kind] = r.name();
    }
    // Only what is not healthy in the apply's own answer is watched: a ConfigMap is current as
    // soon as it is accepted, and is never fetched again.
    if (assess(live).state != Health::current) pending_.push_back({path, describe(r)});
    return {};
  }

  Status wait_healthy() {
    const auto deadline = Clock::now() + options_.health_timeout;
    std::vector<std::pair<Pending, std::string>> waiting;
    for (;;) {
      waiting.clear();
      for (const Pending& p : pending_) {
        SOVDEV_ASSIGN(HttpResponse response, api_->get(p.path));
        if (response.code == 404) {
          waiting.push_back({p, "not found"});
          continue;
        }
        if (response.code != 200) return api_error("GET", p.path, response).context(p.what);

        const HealthResult health = assess(json::parse(response.body, nullptr, false));
        if (health.state == Health::failed) {
          return make_error(Errc::unhealthy, p.what + ": " + health.message);
        }
        if (health.state == Health::in_progress) waiting.push_back({p, health.message});
      }
      pending_.clear();
      for (auto& [p, why] : waiting) pending_.push_back(p);
      if (pending_.empty()) return {};
      if (Clock::now() >= deadline) break;
      beat();  // the health gate may wait minutes: the agent's loop runs meanwhile
      std::this_thread::sleep_for(options_.poll_interval);
    }
    std::string list;
    for (size_t i = 0; i < waiting.size() && i < 3; i++) {
      list += (i ? "; " : "") + waiting[i].first.what + ": " + waiting[i].second;
    }
    if (waiting.size() > 3) list += "; and " + std::to_string(waiting.size() - 3) + " more";
    return make_error(Errc::unhealthy, "not healthy within " +
                                           std::to_string(options_.health_timeout.count() / 1000) +
                                           " s: " + list);
  }

  Status prune() {
    store::KubeInventory inventory(db_);
    SOVDEV_ASSIGN(auto listed, inventory.list(version_.stack));
    std::vector<store::KubeObject> gone;
    for (auto& o : listed) {
      if (!applied_.count(Key{o.api_group, o.kind, o.namespace_, o.name})) gone.push_back(o);
    }
    std::stable_sort(gone.begin(), gone.end(),
                     [](const auto& a, const auto& b) { return delete_rank(a) < delete_rank(b); });
    for (const auto& o : gone) {
      const std::string what = describe(o.kind, o.namespace_, o.name);
      auto type = discovery_.find(o.api_version, o.kind);
      if (!type) {
        if (type.error().code != Errc::not_found) return std::move(type).error();
        SOVDEV_TRY(inventory.remove(version_.stack, o));  // its CRD is gone, and it with it
        continue;
      }
      const std::string path = resource_path(*type, o.namespace_, o.name);
      SOVDEV_ASSIGN(HttpResponse live, api_->get(path));
      if (live.code == 404) {
        SOVDEV_TRY(inventory.remove(version_.stack, o));
        continue;
      }
      if (live.code != 200) return api_error("GET", path, live).context("prune " + what);
      const json object = json::parse(live.body, nullptr, false);
      if (label_of(object, kPartOfLabel, "labels") != id_) {
        // Someone else's now (relabelled, or recreated by hand): never ours to delete.
        spdlog::info("prune: {} no longer carries this stack's ApplySet label: left alone", what);
        SOVDEV_TRY(inventory.remove(version_.stack, o));
        continue;
      }
      if (label_of(object, kPruneAnnotation, "annotations") == "disabled") {
        spdlog::info("prune: {} is annotated {}: disabled: left in place", what, kPruneAnnotation);
        SOVDEV_TRY(inventory.remove(version_.stack, o));
        continue;
      }
      SOVDEV_ASSIGN(HttpResponse deleted,
                    api_->request("DELETE", path + "?propagationPolicy=Background"));
      if (deleted.code != 200 && deleted.code != 202 && deleted.code != 404) {
        return api_error("DELETE", path, deleted).context("prune " + what);
      }
      spdlog::info("pruned {}", what);
      counts_.pruned++;
      SOVDEV_TRY(inventory.remove(version_.stack, o));
    }
    return {};
  }

  store::Database& db_;
  std::unique_ptr<ApiClient> api_;
  Discovery discovery_;
  KubeTargetOptions options_;
  target::ApplyBegin version_;
  std::string parent_name_, id_;
  std::map<Key, store::KubeObject> previous_;
  std::set<Key> applied_;
  std::vector<Pending> pending_;             // applied, not yet seen healthy
  std::map<std::string, std::string> crds_;  // "group/Kind" → CRD name, applied by this version
  target::ApplyResult counts_;
};

}  // namespace

std::string applyset_id(const std::string& parent_name, const std::string& parent_namespace) {
  const std::string digest = sha256(parent_name + "." + parent_namespace + ".ConfigMap.");
  std::string b64 = base64_encode(digest);
  for (char& c : b64) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  while (!b64.empty() && b64.back() == '=') b64.pop_back();
  return "applyset-" + b64 + "-v1";
}

Expected<std::unique_ptr<target::Target>> make_kube_target(store::Database& db,
                                                           std::unique_ptr<ApiClient> api,
                                                           KubeTargetOptions options) {
  if (!api) return make_error(Errc::internal, "kube target without an API client");
  return std::unique_ptr<target::Target>(
      std::make_unique<KubeTarget>(db, std::move(api), std::move(options)));
}

}  // namespace sovdev::kube
