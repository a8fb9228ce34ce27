// The text exposition writer: escaping, number spelling, histograms, repeated series.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "hub/metrics_text.hpp"
#include "tests/hub/exposition_check.hpp"

using namespace sovdev::hub::metrics;
using sovdev::testing::parse_exposition;

TEST_CASE("label values escape backslash, double quote and newline", "[metrics]") {
  CHECK(escape_label_value("plain") == "plain");
  CHECK(escape_label_value("a\\b") == "a\\\\b");
  CHECK(escape_label_value("say \"hi\"") == "say \\\"hi\\\"");
  CHECK(escape_label_value("two\nlines") == "two\\nlines");
  CHECK(escape_label_value("\\\"\n") == "\\\\\\\"\\n");
}

TEST_CASE("label values keep valid UTF-8 and replace stray bytes", "[metrics]") {
  CHECK(escape_label_value("Zürich ☃ 𝄞") == "Zürich ☃ 𝄞");
  const std::string fffd = "\xEF\xBF\xBD";
  CHECK(escape_label_value("a\xFF"
                           "b") == "a" + fffd + "b");
  CHECK(escape_label_value("\xC3") == fffd);                        // cut off
  CHECK(escape_label_value("\xC0\xAF") == fffd + fffd);             // overlong '/'
  CHECK(escape_label_value("\xED\xA0\x80") == fffd + fffd + fffd);  // a UTF-16 surrogate
}

TEST_CASE("numbers are written as the text format spells them", "[metrics]") {
  CHECK(format_value(0) == "0");
  CHECK(format_value(0.25) == "0.25");
  CHECK(format_value(1700000000) == "1700000000");
  CHECK(format_value(0.0005) == "0.0005");
  CHECK(format_value(-2.5) == "-2.5");
  CHECK(format_value(1e300) == "1e+300");
  CHECK(format_value(1e-9) == "1e-09");
  CHECK(format_value(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(format_value(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(format_value(std::nan("")) == "NaN");
}

TEST_CASE("a histogram is written with cumulative buckets up to +Inf, _sum and _count",
          "[metrics]") {
  // Binary fractions, so the sum is exact.
  Histogram h({0.125, 0.5, 1});
  for (double v : {0.0625, 0.125, 0.25, 0.75, 0.875, 4.0}) h.observe(v);
  Writer w;
  w.histogram("x_seconds", "Test histogram.", h);
  CHECK(w.text() ==
        "# HELP x_seconds Test histogram.\n"
        "# TYPE x_seconds histogram\n"
        "x_seconds_bucket{le=\"0.125\"} 2\n"  // 0.125 itself is "less or equal"
        "x_seconds_bucket{le=\"0.5\"} 3\n"
        "x_seconds_bucket{le=\"1\"} 5\n"
        "x_seconds_bucket{le=\"+Inf\"} 6\n"
        "x_seconds_sum 6.0625\n"
        "x_seconds_count 6\n");
  const auto parsed = parse_exposition(w.text());
  CHECK(parsed.problems.empty());
}

TEST_CASE("an empty histogram still has every bucket at zero", "[metrics]") {
  Writer w;
  w.histogram("y_seconds", "Empty.", Histogram({1, 2}));
  const auto e = parse_exposition(w.text());
  CHECK(e.problems.empty());
  CHECK(e.value("y_seconds_bucket{le=\"1\"}") == 0);
  CHECK(e.value("y_seconds_bucket{le=\"+Inf\"}") == 0);
  CHECK(e.value("y_seconds_count") == 0);
}

TEST_CASE("a repeated series is written once and counted", "[metrics]") {
  Writer w;
  w.family("z", Type::gauge, "Test gauge.");
  w.sample({{"a", "1"}}, std::uint64_t{5});
  w.sample({{"a", "1"}}, std::uint64_t{6});
  w.sample({{"a", "2"}}, 0.5);
  CHECK(w.duplicates() == 1);
  CHECK(w.text() == "# HELP z Test gauge.\n# TYPE z gauge\nz{a=\"1\"} 5\nz{a=\"2\"} 0.5\n");
  // The same labels in another family are another series.
  w.family("z2", Type::gauge, "Another.");
  w.sample({{"a", "1"}}, std::uint64_t{7});
  CHECK(w.duplicates() == 1);
}

TEST_CASE("counters are exact past 2^53", "[metrics]") {
  Writer w;
  w.family("big_total", Type::counter, "Big.");
  w.sample({}, std::uint64_t{18446744073709551615u});
  CHECK(w.text().find("big_total 18446744073709551615\n") != std::string::npos);
}

TEST_CASE("the test's format reader catches what Prometheus would reject", "[metrics]") {
  // So the tests that rely on it can fail.
  CHECK_FALSE(parse_exposition("x 1\n").problems.empty());  // no TYPE
  CHECK_FALSE(parse_exposition("# TYPE x gauge\nx{a=\"b\\q\"} 1\n").problems.empty());
  CHECK_FALSE(parse_exposition("# TYPE x gauge\nx 1\nx 2\n").problems.empty());
  CHECK_FALSE(parse_exposition("# TYPE x gauge\n# TYPE y gauge\nx 1\ny 1\nx{a=\"1\"} 1\n")
                  .problems.empty());
  CHECK_FALSE(parse_exposition("# TYPE c counter\nc 1\n").problems.empty());
  CHECK_FALSE(parse_exposition("# TYPE h histogram\nh_bucket{le=\"1\"} 2\n"
                               "h_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum 1\n")
                  .problems.empty());
  CHECK(parse_exposition("# TYPE x gauge\nx{a=\"q\\\"\\n\\\\\"} 1\n").problems.empty());
}
