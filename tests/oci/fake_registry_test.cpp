// The registry client against tests/oci/fake_registry.py: the anonymous bearer-token flow,
// redirected blobs, and registries that lie in ways the real one never does.
#include <catch2/catch.hpp>

#include "tests/oci/oci_fixture.hpp"

using namespace sovdev;
using namespace sovdev::oci;
using namespace sovdev::oci::test;

namespace {

// fake_registry.py serving `layout` in `mode`, on a loopback port it picks itself.
class FakeRegistry {
 public:
  FakeRegistry(const std::string& layout, const std::string& mode) {
    child_ = std::make_unique<testing::Child>(
        std::vector<std::string>{"/usr/bin/python3",
                                 testing::source_dir() + "/tests/oci/fake_registry.py", layout,
                                 mode},
        log_.path() + "/log");
    const bool up = testing::wait_until(
        [&] {
          return testing::read_text(log_ / "log").find("PORT ") != std::string::npos ||
                 !child_->running();
        },
        std::chrono::seconds(20));
    const std::string out = testing::read_text(log_ / "log");
    const size_t at = out.find("PORT ");
    if (!up || at == std::string::npos) {
      throw std::runtime_error("fake_registry.py did not start: " + out);
    }
    port_ = std::stoi(out.substr(at + 5));
  }

  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  std::vector<SourceRule> rules() const { return {{host() + "/", "http://" + host()}}; }
  Reference ref(const std::string& tag) const {
    return parse_reference(host() + "/test/app:" + tag).value();
  }

 private:
  testing::TempDir log_;
  std::unique_ptr<testing::Child> child_;
  int port_ = 0;
};

struct SmallLayout {
  testing::TempDir dir;
  std::string layout = dir / "layout";
  SmallLayout() {
    testing::make_layout(layout);
    testing::make_image(layout, "one", "amd64", {{{"etc/one", testing::noise_bytes(8192, 3)}}});
    testing::make_index(layout, "v1", {"one"});
  }
};

Expected<ConvertedImage> convert_fake(const FakeRegistry& fake, MemoryLayers& layers) {
  SOVDEV_ASSIGN(auto source, open_source(fake.rules(), fake.ref("v1")));
  return convert_image(*source, fake.ref("v1"), {"amd64"}, layers);
}

}  // namespace

TEST_CASE(
    "an anonymous bearer token is fetched when asked for, blobs follow redirects, and a "
    "busy registry is tried again",
    "[oci][registry][fake]") {
  SmallLayout small;
  MemoryLayers from_layout_layers;
  const std::vector<SourceRule> layout_rules = {{"layout.test/app", "oci:" + small.layout}};
  const Reference layout_ref = parse_reference("layout.test/app:v1").value();
  auto layout_source = open_source(layout_rules, layout_ref).value();
  auto expected = convert_image(*layout_source, layout_ref, {"amd64"}, from_layout_layers);
  REQUIRE(expected);
  for (const char* mode : {"honest", "redirect", "flaky"}) {
    INFO(mode);
    FakeRegistry fake(small.layout, mode);
    MemoryLayers layers;
    auto image = convert_fake(fake, layers);
    if (!image) FAIL(image.error().message);
    CHECK(image->index_digest == expected->index_digest);
    CHECK(layers.layers == from_layout_layers.layers);
  }
}

TEST_CASE("a registry that lies about a digest, a size or an answer's length is refused",
          "[oci][registry][fake][attack]") {
  SmallLayout small;
  const std::pair<const char*, Errc> modes[] = {{"wrong-digest-header", Errc::signature},
                                                {"huge-manifest", Errc::too_large},
                                                {"long-blob", Errc::signature},
                                                {"basic-auth", Errc::denied}};
  for (const auto& [mode, code] : modes) {
    INFO(mode);
    FakeRegistry fake(small.layout, mode);
    MemoryLayers layers;
    auto image = convert_fake(fake, layers);
    REQUIRE_FALSE(image);
    INFO(image.error().message);
    CHECK(image.error().code == code);
    CHECK(layers.layers.empty());
    if (code == Errc::denied) {
      CHECK_THAT(image.error().message, Catch::Contains("only anonymous pulls"));
    }
  }
}
