#include "index/normalize.h"

#include <gtest/gtest.h>

namespace fhirshift::index {
namespace {

int64_t ms(int y, int mo, int d, int h = 0, int mi = 0, int s = 0, int milli = 0) {
  // days_from_civil via timegm-free arithmetic: count days from 1970 with the parser itself.
  auto r = parse_date_range(std::to_string(y) + "-" + (mo < 10 ? "0" : "") + std::to_string(mo) +
                            "-" + (d < 10 ? "0" : "") + std::to_string(d));
  return r->lo_ms + ((h * 60LL + mi) * 60 + s) * 1000 + milli;
}

TEST(Normalize, StringsLoseCaseMarksAndExtraSpace) {
  EXPECT_EQ(normalize_string("Müller "), "muller");
  EXPECT_EQ(normalize_string("  José\t María  NÚÑEZ\n"), "jose maria nunez");
  EXPECT_EQ(normalize_string("Łukasiewicz Søren Æbelø Straße"), "lukasiewicz soren aebelo strasse");
  EXPECT_EQ(normalize_string("Zoe\xCC\x88"), "zoe");  // combining diaeresis (NFD input)
  EXPECT_EQ(normalize_string("Ωμέγα ΟΔΟΣ"), "ωμεγα οδοσ");
  EXPECT_EQ(normalize_string("Ёлка Йод"), "елка иод");
  EXPECT_EQ(normalize_string("東京 עברית"), "東京 עברית");  // other scripts pass through
  EXPECT_EQ(normalize_string("   "), "");
  EXPECT_EQ(lower_case("Heart RATE Ärger"), "heart rate ärger");
}

TEST(Normalize, DateRangesByPrecisionAndZone) {
  EXPECT_EQ(parse_date_range("1970"), (DateRange{0, ms(1971, 1, 1) - 1}));
  EXPECT_EQ(parse_date_range("2020")->lo_ms, ms(2020, 1, 1));
  EXPECT_EQ(parse_date_range("2020")->hi_ms, ms(2020, 12, 31, 23, 59, 59, 999));
  EXPECT_EQ(parse_date_range("2020-02")->hi_ms, ms(2020, 2, 29, 23, 59, 59, 999));
  EXPECT_EQ(parse_date_range("2021-02")->hi_ms, ms(2021, 2, 28, 23, 59, 59, 999));
  EXPECT_EQ(parse_date_range("2020-03-15"), (DateRange{ms(2020, 3, 15), ms(2020, 3, 16) - 1}));
  EXPECT_EQ(parse_date_range("2020-03-15T10:20:30Z"),
            (DateRange{ms(2020, 3, 15, 10, 20, 30), ms(2020, 3, 15, 10, 20, 30, 999)}));
  EXPECT_EQ(parse_date_range("2020-03-15T10:20:30.123+02:00"),
            (DateRange{ms(2020, 3, 15, 8, 20, 30, 123), ms(2020, 3, 15, 8, 20, 30, 123)}));
  EXPECT_EQ(parse_date_range("2020-03-15T01:00:00-05:30")->lo_ms, ms(2020, 3, 15, 6, 30, 0));
  EXPECT_EQ(parse_date_range("2020-03-15T10:20:30"), parse_date_range("2020-03-15T10:20:30Z"));
  EXPECT_EQ(parse_date_range("2020-03-15T10:20")->hi_ms, ms(2020, 3, 15, 10, 20, 59, 999));
  EXPECT_EQ(parse_date_range("2020-03-15T10:20:30.5Z")->hi_ms, ms(2020, 3, 15, 10, 20, 30, 599));
  EXPECT_EQ(parse_date_range("0001")->lo_ms, kMinDateMs);
  EXPECT_EQ(parse_date_range("9999-12-31")->hi_ms, kMaxDateMs);
  for (const char* bad : {"", "20", "2020-13", "2020-02-30", "2020-01-01T25:00:00Z", "spring 2019",
                          "2020-01-01T10:00:00+2", "2020-01-01 10:00:00"})
    EXPECT_FALSE(parse_date_range(bad)) << bad;
}

}  // namespace
}  // namespace fhirshift::index
