-- Agent cache, version 3: what the kube target has put on the cluster, per stack.
-- A row is written as each object is applied, before the apply of its version completes, so
-- that objects of a version that failed half-way (and was rolled back) are still known and
-- pruned. Keyed by API group, not version: the same object applied through a new version of
-- its API is one object, and must never be pruned through the old one.
CREATE TABLE kube_inventory (
  stack TEXT NOT NULL,
  api_group TEXT NOT NULL,
  kind TEXT NOT NULL,
  namespace TEXT NOT NULL,
  name TEXT NOT NULL,
  api_version TEXT NOT NULL,
  applied_digest BLOB NOT NULL CHECK (typeof(applied_digest) = 'blob' AND length(applied_digest) = 32),
  resource_version TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (stack, api_group, kind, namespace, name)
) WITHOUT ROWID;
