// The /metrics page counts what the serve loop did with image blob requests.
#include <catch2/catch.hpp>

#include "hub/metrics.hpp"
#include "platform/store/hub_store.hpp"
#include "tests/hub/exposition_check.hpp"
#include "tests/support/process.hpp"

using namespace sovdev;

TEST_CASE("the metrics page shows image chunks served and blob manifests sent or unknown",
          "[metrics][images]") {
  sovdev::testing::TempDir dir;
  auto db = store::open_hub_database(dir / "hub.db");
  REQUIRE(db);
  hub::metrics::LoopFigures figures;
  figures.stats.chunks_sent = 3;
  figures.stats.blobs.chunks_sent = 12;
  figures.stats.blobs.manifests_sent = 4;
  figures.stats.blobs.unknown = 1;
  auto page = hub::metrics::render(*db, figures, {"1"});
  REQUIRE(page);
  const auto e = sovdev::testing::parse_exposition(*page);
  INFO(*page);
  CHECK(e.problems.empty());
  CHECK(e.value(R"(sovdev_hub_chunks_served_total{kind="image"})") == 12);
  CHECK(e.value(R"(sovdev_hub_chunks_served_total{kind="full"})") == 3);
  CHECK(e.value(R"(sovdev_hub_image_blob_requests_total{result="sent"})") == 4);
  CHECK(e.value(R"(sovdev_hub_image_blob_requests_total{result="unknown"})") == 1);
}
