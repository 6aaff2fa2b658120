#include <gtest/gtest.h>

#include "verify/findings.h"

namespace fhirshift::verify {
namespace {

Difference diff(Kind kind, std::optional<int64_t> lu) {
  Difference d;
  d.kind = kind;
  d.id = "x";
  d.lu_ms = lu;
  return d;
}

TEST(Findings, EqualWhenNothingButInFlightDifferences) {
  Findings f(1000, 900);
  EXPECT_TRUE(f.equal());
  EXPECT_EQ(f.verdict(10).rfind("EQUAL (10 entries compared)", 0), 0u) << f.verdict(10);
  f.add(diff(Kind::kMissing, 1001));   // newer than the source's start point
  f.add(diff(Kind::kExtra, 950));      // newer than the target's
  f.add(diff(Kind::kBadState, 901));
  EXPECT_TRUE(f.equal());
  EXPECT_EQ(f.in_flight(), 3);
  EXPECT_NE(f.verdict(10).find("3 in flight"), std::string::npos);
  EXPECT_EQ(f.verdict(10).rfind("EQUAL", 0), 0u);
}

// The failing demo run of issue 14: a contained Observation v1 still current in the target while
// its container, DiagnosticReport v1, was already history there, because the source held the
// container's v2, newer than the start point, which the migrator had not copied yet.
TEST(Findings, ABadStateWhoseContainersResourceHasANewerVersionIsInFlight) {
  const int64_t source_start = 8100, target_start = 8050;
  Difference contained = diff(Kind::kBadState, 7000);  // Observation/obs1 v1, older than both start points
  contained.detail = "contained entry has cur: true but its container has cur: false";
  contained.newest_source_lu_ms = 8248;  // DiagnosticReport v2 in the source
  contained.newest_target_lu_ms = 7000;  // the target has only v1
  Findings f(source_start, target_start);
  f.add(contained);
  EXPECT_TRUE(f.equal()) << f.verdict(1);
  EXPECT_EQ(f.in_flight(), 1);

  // The same state with no newer version on either side is a difference.
  contained.newest_source_lu_ms = 7000;
  Findings settled(source_start, target_start);
  settled.add(contained);
  EXPECT_EQ(settled.count(Kind::kBadState), 1);
  EXPECT_EQ(settled.in_flight(), 0);

  // A newer version in the target only (copied, its flips not flushed yet) is in flight too.
  contained.newest_target_lu_ms = 8060;
  Findings copying(source_start, target_start);
  copying.add(contained);
  EXPECT_TRUE(copying.equal());
}

TEST(Findings, OnlyABadStateLooksAtItsResourcesNewestVersion) {
  Difference changed = diff(Kind::kChanged, 7000);
  changed.newest_source_lu_ms = 9000;
  Findings f(8100, 8050);
  f.add(changed);
  EXPECT_EQ(f.count(Kind::kChanged), 1);
}

TEST(Findings, TheVerdictCountsEachKind) {
  Findings f(1000, 1000);
  f.add(diff(Kind::kMissing, 5));
  f.add(diff(Kind::kMissing, std::nullopt));
  f.add(diff(Kind::kExtra, 10));
  f.add(diff(Kind::kChanged, 1000));
  f.add(diff(Kind::kBadState, 3));
  Difference cell = diff(Kind::kExtra, std::nullopt);
  cell.count = 4;
  f.add(cell);
  EXPECT_FALSE(f.equal());
  EXPECT_EQ(f.verdict(7).rfind("DIFFERENT: 2 missing, 5 extra, 1 changed, 1 bad state (7 entries", 0), 0u)
      << f.verdict(7);
  f.set_quarantine(f.kept()[0], "bad-field: x");
  f.set_quarantine(f.kept()[0], "bad-field: x");
  EXPECT_EQ(f.quarantined(), 1);
  EXPECT_NE(f.verdict(7).find("1 quarantined"), std::string::npos);
}

TEST(Findings, AcceptedAndSupersededQuarantinedEntriesAreAccountedForNotMissing) {
  Findings f(1000, 1000);
  for (const char* id : {"a", "b", "c", "d"}) {
    Difference d = diff(Kind::kMissing, 10);
    d.id = id;
    f.add(std::move(d));
  }
  for (size_t i = 0; i < 3; ++i) f.set_quarantine(f.kept()[i], "type-mismatch: x");
  // "d" is missing but not quarantined: never accounted for, whatever the decision says.
  f.account_quarantined([](const Difference& d) -> std::optional<AccountedEntry> {
    if (d.id == "a")
      return AccountedEntry{AccountedEntry::How::kAccepted, "a", "", "", "me", 5, "ok"};
    if (d.id == "b")
      return AccountedEntry{AccountedEntry::How::kSuperseded, "b", "", "", "x", {}, ""};
    if (d.id == "d")
      return AccountedEntry{AccountedEntry::How::kAccepted, "d", "", "", "me", 5, "ok"};
    return std::nullopt;
  });
  EXPECT_EQ(f.count(Kind::kMissing), 2);
  EXPECT_EQ(f.quarantined(), 1);
  EXPECT_EQ(f.kept().size(), 2u);
  EXPECT_EQ(
      f.verdict(9),
      "DIFFERENT: 2 missing, 0 extra, 0 changed, 0 bad state (9 entries compared; 1 quarantined; "
      "1 quarantined entry accepted; 1 quarantined entry superseded)");
  f.add_accounted({AccountedEntry::How::kAccepted, "a", "", "", "me", 5, "ok"});  // not twice
  f.add_accounted({AccountedEntry::How::kAccepted, "e", "", "", "me", 5, "ok"});
  EXPECT_EQ(f.accounted(AccountedEntry::How::kAccepted), 2);

  Findings equal(1000, 1000);
  equal.add_accounted({AccountedEntry::How::kAccepted, "a", "", "", "me", 5, "ok"});
  equal.add_accounted({AccountedEntry::How::kAccepted, "b", "", "", "me", 5, "ok"});
  EXPECT_TRUE(equal.equal());
  EXPECT_EQ(equal.verdict(3), "EQUAL (3 entries compared; 2 quarantined entries accepted)");
}

TEST(Findings, AnEmptySideMakesEverythingOnItInFlight) {
  Findings f(std::nullopt, std::nullopt);
  f.add(diff(Kind::kMissing, 1));
  EXPECT_TRUE(f.equal());
  EXPECT_EQ(f.in_flight(), 1);
}

TEST(Findings, KeepsABoundedNumberButCountsAll) {
  Findings f(10, 10);
  for (size_t i = 0; i < Findings::kMaxKept + 5; ++i) f.add(diff(Kind::kChanged, 1));
  EXPECT_EQ(f.count(Kind::kChanged), static_cast<int64_t>(Findings::kMaxKept + 5));
  EXPECT_EQ(f.kept().size(), Findings::kMaxKept);
  EXPECT_FALSE(f.complete());
}

TEST(Iso8601, RoundTripsWhatTheCutOverPrints) {
  EXPECT_EQ(format_iso8601(1704164645678), "2024-01-02T03:04:05.678Z");
  EXPECT_EQ(parse_iso8601("2024-01-02T03:04:05.678Z"), 1704164645678);
  EXPECT_EQ(parse_iso8601("2024-01-02T04:04:05.678+01:00"), 1704164645678);
  EXPECT_EQ(parse_iso8601("2024-01-02T03:04:05Z"), 1704164645000);
  EXPECT_EQ(parse_iso8601("2024-01-02"), 1704153600000);
  EXPECT_EQ(format_iso8601(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_FALSE(parse_iso8601("yesterday"));
  EXPECT_FALSE(parse_iso8601("2024-13-01T00:00:00Z"));
}

}  // namespace
}  // namespace fhirshift::verify
