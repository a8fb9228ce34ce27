#include "bundles/rollout_rules.hpp"

#include <catch2/catch.hpp>

using namespace sovdev;
using namespace sovdev::rollout;

namespace {

bool sel(std::string_view text, const Labels& labels, std::string_view id = "edge-01") {
  auto s = parse_selector(text);
  REQUIRE(s);
  return s->matches(labels, id);
}

}  // namespace

TEST_CASE("selectors match labels and the agent id", "[rollout]") {
  const Labels lab{{"site", "lab"}, {"region", "eu"}, {"gpu", ""}};
  CHECK(sel("site=lab", lab));
  CHECK(sel("site==lab", lab));
  CHECK_FALSE(sel("site=plant-7", lab));
  CHECK(sel("site!=plant-7", lab));
  CHECK_FALSE(sel("site!=lab", lab));
  CHECK(sel("region in (eu,us)", lab));
  CHECK(sel("region in ( us , eu )", lab));
  CHECK_FALSE(sel("region notin (eu)", lab));
  CHECK(sel("region notin (us)", lab));
  CHECK(sel("gpu", lab));
  CHECK_FALSE(sel("!gpu", lab));
  CHECK(sel("!hw", lab));
  CHECK_FALSE(sel("hw", lab));
  // A missing label: != and notin hold, = and in do not.
  CHECK(sel("hw!=rpi5", lab));
  CHECK(sel("hw notin (rpi5)", lab));
  CHECK_FALSE(sel("hw in (rpi5)", lab));
  CHECK(sel("id=edge-01", lab));
  CHECK_FALSE(sel("id=edge-02", lab));
  CHECK(sel("id in (edge-02,edge-01)", lab));
  // Every requirement must hold.
  CHECK(sel("site=lab, region in (eu,us), !hw", lab));
  CHECK_FALSE(sel("site=lab,region=us", lab));
  CHECK(sel("", {}));
  CHECK(sel("*", {}));
  CHECK(sel("gpu=", lab));  // an empty value matches a label set to ""
}

TEST_CASE("bad selectors are refused with what is wrong", "[rollout]") {
  const auto refused = [](std::string_view text, std::string_view why) {
    auto s = parse_selector(text);
    REQUIRE_FALSE(s);
    CHECK(s.error().code == Errc::invalid);
    CHECK_THAT(s.error().message, Catch::Contains(std::string(why)));
  };
  refused("site=%", "bad value");
  refused("=lab", "bad key");
  refused("site=lab,", "an empty requirement");
  refused("region in eu", "expected a list in parentheses");
  refused("region in (eu", "without its ')'");
  refused("region in ((eu))", "nested");
  refused("site=a b", "bad value");
  refused("site=lab;rm", "bad value");
  refused("site lab", "expected =, !=, in or notin");
  refused("id=edge/01", "bad value");
  refused(std::string(kMaxSelectorBytes + 1, 'a'), "longer than");
  std::string many;
  for (size_t i = 0; i <= kMaxRequirements; ++i)
    many += (i ? "," : "") + std::string("k") + std::to_string(i);
  refused(many, "more than");
}

TEST_CASE("a selector's text parses back to the same selector", "[rollout]") {
  for (const char* text : {"site=lab", "region in (eu,us),!gpu,hw!=rpi4", "*", "a notin (b),c"}) {
    auto s = parse_selector(text);
    REQUIRE(s);
    auto again = parse_selector(s->text());
    REQUIRE(again);
    CHECK(again->text() == s->text());
  }
  CHECK(parse_selector("site == lab ,  region in ( eu )")->text() == "site=lab,region in (eu)");
}

TEST_CASE("a percentage takes a stable, nested share of the agents", "[rollout]") {
  int in10 = 0, in50 = 0;
  for (int i = 0; i < 2000; ++i) {
    const std::string id = "edge-" + std::to_string(i);
    const bool a = in_share(7, id, 10);
    const bool b = in_share(7, id, 50);
    CHECK(in_share(7, id, 10) == a);  // the same answer every time
    if (a) CHECK(b);                  // 10 % is inside 50 %
    in10 += a;
    in50 += b;
    CHECK(in_share(7, id, 100));
    CHECK_FALSE(in_share(7, id, 0));
  }
  CHECK(in10 > 140);
  CHECK(in10 < 260);
  CHECK(in50 > 900);
  CHECK(in50 < 1100);
  // Another rollout draws other agents.
  int same = 0;
  for (int i = 0; i < 2000; ++i) {
    const std::string id = "edge-" + std::to_string(i);
    same += in_share(7, id, 10) && in_share(8, id, 10);
  }
  CHECK(same < 60);
}

TEST_CASE("a rollout admits only while running, by its admitted waves", "[rollout]") {
  pb::CatalogRollout r;
  r.set_id(3);
  auto* w = r.add_admitted();
  w->set_name("lab");
  w->set_selector("site=lab");
  w->set_percent(100);
  const Labels lab{{"site", "lab"}}, plant{{"site", "plant-7"}};
  CHECK(admits(r, lab, "a1"));
  CHECK_FALSE(admits(r, plant, "a2"));
  r.set_state(pb::CatalogRollout::PAUSED);
  CHECK_FALSE(admits(r, lab, "a1"));
  r.set_state(pb::CatalogRollout::ABORTED);
  CHECK_FALSE(admits(r, lab, "a1"));
  r.set_state(pb::CatalogRollout::RUNNING);
  w->set_selector("site=(");  // a selector that does not parse admits nobody
  CHECK_FALSE(admits(r, lab, "a1"));
}

TEST_CASE("waves parse from NAME:SELECTOR[:PERCENT]", "[rollout]") {
  auto w = parse_wave("canary:site=lab:10%");
  REQUIRE(w);
  CHECK(w->name() == "canary");
  CHECK(w->selector() == "site=lab");
  CHECK(w->percent() == 10);
  w = parse_wave("eu:region in (eu,us)");
  REQUIRE(w);
  CHECK(w->selector() == "region in (eu,us)");
  CHECK(w->percent() == 100);
  w = parse_wave("all:*:50");
  REQUIRE(w);
  CHECK(w->selector() == "*");
  CHECK(w->percent() == 50);
  CHECK_FALSE(parse_wave("nocolon"));
  CHECK_FALSE(parse_wave(":site=lab"));
  CHECK_FALSE(parse_wave("w:site=lab:0"));
  CHECK_FALSE(parse_wave("w:site=lab:101"));
  CHECK_FALSE(parse_wave("w:site=lab:ten"));
  CHECK_FALSE(parse_wave("w:site=%:10"));
}

TEST_CASE("agent labels from a config are checked", "[rollout]") {
  CHECK(check_labels({{"site", "plant-7"}, {"region", "eu"}, {"topology.sovdev/zone", "a"}}));
  CHECK_FALSE(check_labels({{"id", "x"}}));
  CHECK_FALSE(check_labels({{"site", "plant 7"}}));
  CHECK_FALSE(check_labels({{"-site", "a"}}));
  CHECK_FALSE(check_labels({{"site", std::string(64, 'a')}}));
  Labels many;
  for (size_t i = 0; i <= kMaxLabels; ++i) many["k" + std::to_string(i)] = "v";
  CHECK_FALSE(check_labels(many));
}
