// The fleet view: per-service health read from objects' labels on the agent, and the hub's
// service × environment matrix built from what agents report.
#include <catch2/catch.hpp>

#include "agent/services.hpp"
#include "hub/fleet.hpp"

namespace sovdev {
namespace {

pb::ResourceRecord record(const std::string& json) {
  pb::ResourceRecord r;
  r.set_kind("Service");
  r.set_name("x");
  r.set_json(json);
  return r;
}

store::AgentRecord report(const std::string& agent, const std::string& env,
                          const std::string& state,
                          const std::vector<std::pair<std::string, std::string>>& services) {
  pb::AgentStatus st;
  st.set_agent_id(agent);
  st.set_channel(env);
  st.set_environment(state == "offline" ? "" : env);
  st.set_state(state);
  for (const auto& [name, health] : services) {
    auto* s = st.add_services();
    s->set_service(name);
    s->set_state(health);
    s->set_message(name + " is " + health);
  }
  // The hub places an agent by the bundle it reports (a last will: the one before it).
  const std::string digest = std::string(32 - env.size(), '#') + env;
  store::AgentRecord r{agent, env, "", 100};
  if (state == "offline") {
    pb::AgentStatus before;
    before.set_applied_digest(digest);
    r.prior_status = before.SerializeAsString();
  } else {
    st.set_applied_digest(digest);
  }
  r.status = st.SerializeAsString();
  return r;
}

std::optional<hub::PublishedBundle> published(std::string_view digest) {
  const std::string env(digest.substr(digest.find_last_of('#') + 1));
  return hub::PublishedBundle{env, "sovdev", 1, env};
}

const hub::Cell& cell(const hub::FleetView& view, const std::string& service,
                      const std::string& env) {
  for (const auto& row : view.rows) {
    if (row.service == service) return row.cells.at(env);
  }
  FAIL("no row " << service);
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("an object's service and external mark come from its labels", "[fleet]") {
  auto s = agent::service_of(
      R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"postgresql","labels":)"
      R"({"app.kubernetes.io/part-of":"sovdev","sovdev.io/service":"postgresql",)"
      R"("sovdev.io/external":"true"}},"spec":{"labels":{"sovdev.io/service":"decoy"}}})");
  CHECK(s.service == "postgresql");
  CHECK(s.external);
  CHECK(agent::service_of(R"({"metadata":{"name":"a"}})").service.empty());
  CHECK(
      agent::service_of(R"({"metadata":{"labels":{"sovdev.io/service":"a\"b"}}})").service.empty());
  CHECK(agent::service_of("not json").service.empty());
}

TEST_CASE("the tally reports healthy, external and degraded services", "[fleet]") {
  agent::ServiceTally tally;
  tally.add(record(
      R"({"metadata":{"labels":{"sovdev.io/service":"redis","sovdev.io/external":"true"}}})"));
  tally.add(record(R"({"metadata":{"labels":{"sovdev.io/service":"grafana"}}})"));
  tally.add(record(R"({"metadata":{"name":"no-service"}})"));
  tally.fail_current("ignored: the current object has no service");
  tally.add(record(R"({"metadata":{"labels":{"sovdev.io/service":"traefik"}}})"));
  tally.fail_current("Deployment sovdev/traefik: 422");
  auto health = tally.health();
  REQUIRE(health.size() == 3);
  CHECK(health[0].service() == "grafana");
  CHECK(health[0].state() == "healthy");
  CHECK(health[1].service() == "redis");
  CHECK(health[1].state() == "external");
  CHECK(health[2].service() == "traefik");
  CHECK(health[2].state() == "degraded");
  CHECK(health[2].message() == "Deployment sovdev/traefik: 422");

  // Laid over the version that keeps running: only the failed service changes.
  agent::ServiceTally good;
  good.add(record(R"({"metadata":{"labels":{"sovdev.io/service":"authentik"}}})"));
  auto over = tally.failures_over(good.health());
  REQUIRE(over.size() == 2);
  CHECK(over[0].service() == "authentik");
  CHECK(over[0].state() == "healthy");
  CHECK(over[1].service() == "traefik");
  CHECK(over[1].state() == "degraded");
}

TEST_CASE("the matrix has the stack's rows and environments in order, worst state per cell",
          "[fleet]") {
  auto view = hub::make_fleet_view(
      {
          report("edge-2", "edge", "healthy",
                 {{"kubernetes", "healthy"}, {"postgresql", "healthy"}}),
          report("edge-1", "edge", "rolled_back",
                 {{"kubernetes", "healthy"}, {"postgresql", "degraded"}}),
          report("prod-1", "prod", "healthy",
                 {{"kubernetes", "healthy"}, {"postgresql", "external"}, {"zookeeper", "healthy"}}),
          report("dev-1", "dev", "offline", {}),
      },
      published);
  REQUIRE(view.environments == std::vector<std::string>{"dev", "prod", "edge"});
  std::vector<std::string> rows;
  for (const auto& r : view.rows) rows.push_back(r.title);
  CHECK(rows == std::vector<std::string>{"Kubernetes", "PostgreSQL", "zookeeper"});

  CHECK(cell(view, "postgresql", "edge").text() == "degraded 1/2");
  CHECK(cell(view, "postgresql", "edge").message == "postgresql is degraded");
  CHECK(cell(view, "kubernetes", "edge").text() == "healthy 2/2");
  CHECK(cell(view, "postgresql", "prod").text() == "external");
  CHECK(cell(view, "postgresql", "dev").text() == "offline");
  CHECK(cell(view, "zookeeper", "edge").text() == "-");
}

}  // namespace sovdev
