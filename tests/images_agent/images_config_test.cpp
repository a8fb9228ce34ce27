// The config's [images] quota: its default, sizes with units, and errors naming file and line.
#include <catch2/catch.hpp>

#include <string>

#include "agent/config.hpp"
#include "tests/support/process.hpp"

using namespace sovdev;
using namespace sovdev::agent;
using sovdev::testing::TempDir;
using sovdev::testing::write_text;

namespace {

struct QuotaSite {
  TempDir dir;
  QuotaSite() { write_text(dir / "trust.root", "root"); }
  // Five lines: what follows starts on line 6.
  Expected<AgentConfig> parse(const std::string& more) const {
    return parse_config(
        "agent_id = \"edge-01\"\nchannels = [\"edge\"]\ntrust_root = \"trust.root\"\n"
        "[broker]\nurls = [\"tcp://127.0.0.1:1883\"]\n" +
            more,
        dir / "agent.toml");
  }
};

}  // namespace

TEST_CASE("the image quota is 8 GiB unless [images] quota says otherwise", "[images][config]") {
  QuotaSite site;
  auto plain = site.parse("");
  REQUIRE(plain);
  CHECK(plain->images.quota == uint64_t{8} << 30);
  auto units = site.parse("[images]\nquota = \"512MiB\"\n");
  REQUIRE(units);
  CHECK(units->images.quota == uint64_t{512} << 20);
  auto decimal = site.parse("[images]\nquota = \"20GB\"\n");
  REQUIRE(decimal);
  CHECK(decimal->images.quota == uint64_t{20} * 1000 * 1000 * 1000);
  auto bytes = site.parse("[images]\nquota = 2000000000\n");
  REQUIRE(bytes);
  CHECK(bytes->images.quota == 2000000000);
}

TEST_CASE("an image quota that is not a size is refused with its file and line",
          "[images][config]") {
  QuotaSite site;
  auto bad = site.parse("[images]\nquota = \"lots\"\n");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("agent.toml:7: images.quota") != std::string::npos);
  CHECK(bad.error().message.find("8GiB") != std::string::npos);
  auto tiny = site.parse("[images]\nquota = 1000\n");
  REQUIRE_FALSE(tiny);
  CHECK(tiny.error().message.find("below 1 MiB") != std::string::npos);
  auto typo = site.parse("[images]\nquotas = \"1GiB\"\n");
  REQUIRE_FALSE(typo);
  CHECK(typo.error().message.find("did you mean 'quota'") != std::string::npos);
}
