#include "platform/store/kube_inventory.hpp"

#include "platform/store/detail.hpp"

namespace sovdev::store {

using detail::check_digest;
using detail::with_context;

namespace {

std::string name_of(std::string_view stack, const KubeObject& o) {
  return std::string(stack) + " " + o.kind + " " +
         (o.namespace_.empty() ? o.name : o.namespace_ + "/" + o.name);
}

}  // namespace

Status KubeInventory::record(std::string_view stack, const KubeObject& o) {
  return with_context("record " + name_of(stack, o) + " in the inventory", [&]() -> Status {
    SOVDEV_TRY(check_digest(o.applied_digest));
    SOVDEV_ASSIGN(Statement upsert,
                  db_.prepare("INSERT INTO kube_inventory (stack, api_group, kind, namespace, "
                              "name, api_version, applied_digest, resource_version) "
                              "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                              "ON CONFLICT (stack, api_group, kind, namespace, name) DO UPDATE "
                              "SET api_version = excluded.api_version, "
                              "applied_digest = excluded.applied_digest, "
                              "resource_version = excluded.resource_version"));
    SOVDEV_TRY(upsert.bind_all(stack, o.api_group, o.kind, o.namespace_, o.name, o.api_version,
                               Blob{o.applied_digest}, o.resource_version));
    return upsert.run();
  }());
}

Expected<std::vector<KubeObject>> KubeInventory::list(std::string_view stack) {
  return with_context(
      "list the inventory of " + std::string(stack), [&]() -> Expected<std::vector<KubeObject>> {
        SOVDEV_ASSIGN(Statement select,
                      db_.prepare("SELECT api_group, kind, namespace, name, api_version, "
                                  "applied_digest, resource_version FROM kube_inventory "
                                  "WHERE stack = ? ORDER BY api_group, kind, namespace, name"));
        SOVDEV_TRY(select.bind_all(stack));
        std::vector<KubeObject> objects;
        for (;;) {
          SOVDEV_ASSIGN(const bool row, select.step());
          if (!row) return objects;
          objects.push_back({select.text(0), select.text(1), select.text(2), select.text(3),
                             select.text(4), select.blob(5), select.text(6)});
        }
      }());
}

Status KubeInventory::remove(std::string_view stack, const KubeObject& o) {
  return with_context("remove " + name_of(stack, o) + " from the inventory", [&]() -> Status {
    SOVDEV_ASSIGN(Statement del, db_.prepare("DELETE FROM kube_inventory WHERE stack = ? AND "
                                             "api_group = ? AND kind = ? AND namespace = ? AND "
                                             "name = ?"));
    SOVDEV_TRY(del.bind_all(stack, o.api_group, o.kind, o.namespace_, o.name));
    return del.run();
  }());
}

}  // namespace sovdev::store
