// The config's rollout keys: [labels], [rollouts] prefetch and the agent's own [[window]]s
// (docs/design-rollouts.md), with errors that name the file and line.
#include <string>

#include "agent/config.hpp"
#include "tests/support/process.hpp"

using namespace sovdev;
using namespace sovdev::agent;
using sovdev::testing::TempDir;
using sovdev::testing::write_text;

namespace {

struct LabelSite {
  TempDir dir;
  LabelSite() { write_text(dir / "trust.root", "root"); }
  std::string path() const { return dir / "agent.toml"; }
  Expected<AgentConfig> parse(const std::string& more) const {
    return parse_config(kMinimal + more, path());
  }
  // Five lines: what follows starts on line 6.
  const std::string kMinimal =
      "agent_id = \"edge-01\"\nchannels = [\"edge\"]\ntrust_root = \"trust.root\"\n"
      "[broker]\nurls = [\"tcp://127.0.0.1:1883\"]\n";
};

std::string rollout_error_of(const Expected<AgentConfig>& c) {
  REQUIRE_FALSE(c);
  CHECK(c.error().code == Errc::invalid);
  return c.error().message;
}

const std::string kAllowWindow =
    "[[window]]\nkind = \"allow\"\nschedule = \"0 2 * * *\"\nduration = \"4h\"\n"
    "zone = \"Europe/Berlin\"\n";

}  // namespace

TEST_CASE("without rollout keys an agent has no labels, no prefetch and no windows of its own") {
  LabelSite site;
  auto c = site.parse("");
  REQUIRE(c);
  CHECK(c->labels.empty());
  CHECK_FALSE(c->rollouts.prefetch);
  CHECK(c->windows.empty());
}

TEST_CASE("labels, prefetch and windows are read as given") {
  LabelSite site;
  auto c = site.parse(
      "[labels]\nsite = \"plant-7\"\n\"region/zone\" = \"eu-1\"\n"
      "[rollouts]\nprefetch = true\n" +
      kAllowWindow +
      "[[window]]\nkind = \"deny\"\nschedule = \"0 8 * * 1-5\"\n"
      "duration = \"10h\"\nzone = \"UTC\"\n");
  REQUIRE(c);
  CHECK(c->labels == sovdev::rollout::Labels{{"region/zone", "eu-1"}, {"site", "plant-7"}});
  CHECK(c->rollouts.prefetch);
  REQUIRE(c->windows.size() == 2);
  CHECK(c->windows[0].kind == "allow");
  CHECK(c->windows[0].schedule == "0 2 * * *");
  CHECK(c->windows[0].duration == "4h");
  CHECK(c->windows[0].zone == "Europe/Berlin");
  CHECK(c->windows[1].kind == "deny");
}

TEST_CASE("a label named id is refused with its line: selectors name the agent's id by it") {
  LabelSite site;
  const std::string m = rollout_error_of(site.parse("[labels]\nsite = \"a\"\nid = \"edge-02\"\n"));
  CHECK(m.find(site.path() + ":8: labels.id: ") == 0);
  CHECK(m.find("reserved") != std::string::npos);
}

TEST_CASE("a label value that is no label value, or not a string, is refused with its line") {
  LabelSite site;
  const std::string m = rollout_error_of(site.parse("[labels]\nsite = \"plant 7\"\nrack = 4\n"));
  CHECK(m.find(site.path() + ":7: labels.site: ") != std::string::npos);
  CHECK(m.find(site.path() + ":8: labels.rack: must be a string") != std::string::npos);
}

TEST_CASE("more than 32 labels are refused") {
  LabelSite site;
  std::string labels = "[labels]\n";
  for (int i = 0; i < 33; ++i) labels += "l" + std::to_string(i) + " = \"x\"\n";
  CHECK(rollout_error_of(site.parse(labels)).find("33 labels: at most 32") != std::string::npos);
}

TEST_CASE("prefetch must be a boolean and [rollouts] has no other key") {
  LabelSite site;
  CHECK(rollout_error_of(site.parse("[rollouts]\nprefetch = \"yes\"\n"))
            .find(":7: rollouts.prefetch: must be true or false") != std::string::npos);
  CHECK(rollout_error_of(site.parse("[rollouts]\nprefech = true\n"))
            .find("unknown key 'rollouts.prefech': did you mean 'prefetch'?") != std::string::npos);
}

TEST_CASE("a window without a field, with a field not a string, or of another kind is refused") {
  LabelSite site;
  const std::string missing =
      rollout_error_of(site.parse("[[window]]\nkind = \"allow\"\nschedule = \"0 2 * * *\"\n"
                                  "duration = \"4h\"\n"));
  CHECK(missing.find(":6: window[1]: zone is required") != std::string::npos);
  const std::string typed =
      rollout_error_of(site.parse(kAllowWindow + "[[window]]\nkind = \"deny\"\nschedule = 5\n"
                                                 "duration = \"4h\"\nzone = \"UTC\"\n"));
  CHECK(typed.find(":13: window[2].schedule: must be a string") != std::string::npos);
  const std::string kind =
      rollout_error_of(site.parse("[[window]]\nkind = \"maybe\"\nschedule = \"0 2 * * *\"\n"
                                  "duration = \"4h\"\nzone = \"UTC\"\n"));
  CHECK(kind.find(":7: window[1].kind: 'maybe' is not allow or deny") != std::string::npos);
  // At the top, before any table (after [broker] it would be broker.window).
  CHECK(rollout_error_of(parse_config("window = \"always\"\n" + site.kMinimal, site.path()))
            .find(":1: window: must be [[window]] tables") != std::string::npos);
  CHECK(rollout_error_of(site.parse(kAllowWindow + "cron = \"x\"\n"))
            .find("unknown key 'window.cron'") != std::string::npos);
}

TEST_CASE("a window platform/windows cannot read is refused at load, with its line") {
  LabelSite site;
  const auto refused = [&](const std::string& schedule, const std::string& duration,
                           const std::string& zone) {
    return rollout_error_of(site.parse("[[window]]\nkind = \"allow\"\nschedule = \"" + schedule +
                                       "\"\nduration = \"" + duration + "\"\nzone = \"" + zone +
                                       "\"\n"));
  };
  const std::string hour = refused("0 25 * * *", "1h", "UTC");
  CHECK(hour.find(":6: window[1]:") != std::string::npos);
  CHECK(hour.find("hour") != std::string::npos);
  CHECK(refused("0 2 * * *", "1h", "Mars/Olympus").find("zone") != std::string::npos);
  CHECK(refused("0 2 * * *", "8d", "UTC").find("duration") != std::string::npos);
  CHECK(refused("0 2 30 2 *", "1h", "UTC").find("never") != std::string::npos);
}

TEST_CASE("the rollout settings printed for check-config read back the same") {
  LabelSite site;
  auto c = site.parse(
      "[labels]\nsite = \"plant-7\"\n\"region/zone\" = \"eu-1\"\n"
      "[rollouts]\nprefetch = true\n" +
      kAllowWindow);
  REQUIRE(c);
  const std::string text = describe_rollout_config(*c);
  CHECK(text.find("\n[labels]\n\"region/zone\" = \"eu-1\"\n\"site\" = \"plant-7\"\n") !=
        std::string::npos);
  CHECK(text.find("prefetch = true\n") != std::string::npos);
  CHECK(text.find("[[window]]\nkind = \"allow\"\nschedule = \"0 2 * * *\"\n") != std::string::npos);
  auto again = parse_config(site.kMinimal + text, site.path());
  REQUIRE(again);
  CHECK(describe_rollout_config(*again) == text);
  CHECK(describe_rollout_config(*site.parse("")).find("prefetch = false") != std::string::npos);
}
