// The entry comparison and version-state rules of `fhirshift verify`, without a database.
#include <gtest/gtest.h>

#include "migrate/transform.h"
#include "schema/entry.h"
#include "verify/compare.h"

namespace fhirshift::verify {
namespace {

using mongo::Bson;

// A deterministic stand-in for the FHIRPath indexer: one parameter, the body's length.
class LengthIndexer final : public index::Indexer {
 public:
  index::SearchIndex index(std::string_view, std::string_view json,
                           index::IndexStats*) const override {
    return {index::IndexEntry{"len", {static_cast<double>(json.size())}}};
  }
  const index::ParamInfo* param(std::string_view, std::string_view) const override {
    return nullptr;
  }
  std::vector<const index::ParamInfo*> params(std::string_view) const override { return {}; }
};

constexpr const char* kBody = R"({"resourceType":"Patient","id":"p1","x":1.50})";

schema::Entry entry(const std::string& id_hex = "65a1b2c3d4e5f60718293a4b") {
  schema::Entry e;
  e.id = *mongo::oid_from_string(id_hex);
  e.im = "Fhir4.0";
  e.type = "Patient";
  e.res_id = "p1";
  e.v = "2";
  e.lu_ms = 1704164645678;
  e.cur = true;
  e.change = schema::Change::kUpdated;
  e.json = kBody;
  return e;
}

// The legacy document as the old server writes it, with a legacy search field.
Bson legacy(const schema::Entry& e) {
  Bson doc = schema::encode_legacy(e);
  mongo::Builder b(doc.get());
  b.document("ix", [](mongo::Builder& d) { d.append("junk", int32_t{1}); });
  return doc;
}

class CompareTest : public ::testing::Test {
 protected:
  Bson migrated(const schema::Entry& e, bool cur) {
    return schema::encode_current(migrate::to_current(e, cur, indexer));
  }
  std::string joined(const Comparison& c) {
    std::string s;
    for (const auto& p : c.problems) s += p + "\n";
    return s;
  }
  LengthIndexer indexer;
  EntryComparator comparator{indexer};
};

TEST_F(CompareTest, WhatTheMigratorWritesIsEqual) {
  auto e = entry();
  Bson s = legacy(e);
  Bson t = migrated(e, true);
  Comparison c = comparator.compare(s.get(), t.get());
  EXPECT_TRUE(c.problems.empty()) << joined(c);
  EXPECT_FALSE(c.contained_cur_differs);
  // History versions carry no idx.
  Bson h = migrated(e, false);
  EXPECT_TRUE(comparator.compare(s.get(), h.get()).problems.empty());
}

TEST_F(CompareTest, ABodyThatDiffersByOneByteIsNamedWithTheOffset) {
  auto e = entry();
  auto changed = e;
  changed.json = R"({"resourceType":"Patient","id":"p1","x":1.5})";
  Bson s = legacy(e);
  Bson t = migrated(changed, false);
  Comparison c = comparator.compare(s.get(), t.get());
  ASSERT_EQ(c.problems.size(), 1u) << joined(c);
  EXPECT_NE(c.problems[0].find("field 'json': body differs from byte 43"), std::string::npos)
      << c.problems[0];
}

TEST_F(CompareTest, EachCommonFieldIsCompared) {
  auto e = entry();
  auto t = e;
  t.v = "3";
  t.lu_ms += 1;
  t.change = schema::Change::kCreated;
  Bson sd = legacy(e);
  Bson td = migrated(t, false);
  std::string all = joined(comparator.compare(sd.get(), td.get()));
  EXPECT_NE(all.find("field 'v': source \"2\", target \"3\""), std::string::npos) << all;
  EXPECT_NE(all.find("field 'lu': source 2024-01-02T03:04:05.678Z, target 2024-01-02T03:04:05.679Z"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("field 'change'"), std::string::npos) << all;
}

TEST_F(CompareTest, ATamperedIdxIsNamedByParameter) {
  auto e = entry();
  Bson s = legacy(e);
  schema::CurrentEntry ce = migrate::to_current(e, true, indexer);
  ce.idx = index::SearchIndex{index::IndexEntry{"len", {1.0}}};
  Bson t = schema::encode_current(ce);
  std::string all = joined(comparator.compare(s.get(), t.get()));
  EXPECT_NE(all.find("field 'idx': parameter 'len' is"), std::string::npos) << all;
}

TEST_F(CompareTest, IdxOnlyOnTheCurrentNonDeletedEntry) {
  auto e = entry();
  Bson s = legacy(e);
  // idx on a history entry
  schema::CurrentEntry history = migrate::to_current(e, true, indexer);
  history.cur = false;
  Bson t1 = schema::encode_current(history);
  EXPECT_NE(joined(comparator.compare(s.get(), t1.get())).find("not the current version"),
            std::string::npos);
  // no idx on the current entry
  schema::CurrentEntry bare = migrate::to_current(e, false, indexer);
  bare.cur = true;
  Bson t2 = schema::encode_current(bare);
  EXPECT_NE(joined(comparator.compare(s.get(), t2.get())).find("'idx' missing on the current"),
            std::string::npos);
  // a current tombstone has none
  auto d = e;
  d.change = schema::Change::kDeleted;
  d.json.reset();
  Bson sd = legacy(d);
  Bson td = migrated(d, true);
  EXPECT_TRUE(comparator.compare(sd.get(), td.get()).problems.empty());
}

TEST_F(CompareTest, LegacyFieldsLeftInTheTargetAreReported) {
  auto e = entry();
  Bson s = legacy(e);
  Bson t = legacy(e);  // a raw copy: no idx, legacy `ix` kept
  std::string all = joined(comparator.compare(s.get(), t.get()));
  EXPECT_NE(all.find("field 'ix' present on the target"), std::string::npos) << all;
  EXPECT_NE(all.find("'idx' missing"), std::string::npos) << all;
}

TEST_F(CompareTest, BadDocumentsOnEitherSideAreProblemsNotExceptions) {
  auto e = entry();
  Bson good_source = legacy(e);
  Bson bad_target = Bson::from_json(R"({"_id":{"$oid":"65a1b2c3d4e5f60718293a4b"},"type":"Patient"})");
  Comparison c = comparator.compare(good_source.get(), bad_target.get());
  ASSERT_FALSE(c.problems.empty());
  EXPECT_NE(c.problems[0].find("the target entry is invalid"), std::string::npos);

  auto broken = e;
  broken.json = R"({"resourceType":"Observation","id":"p1"})";
  Bson bad_source = legacy(broken);
  Bson t = migrated(e, true);
  Comparison c2 = comparator.compare(bad_source.get(), t.get());
  ASSERT_TRUE(c2.source_invalid.has_value());
  EXPECT_NE(c2.source_invalid->find("type-mismatch"), std::string::npos) << *c2.source_invalid;
}

TEST_F(CompareTest, AContainedEntrysCurIsLeftToItsContainer) {
  auto e = entry();
  e.cnt = true;
  e.container = *mongo::oid_from_string("65a1b2c3d4e5f60718293a00");
  Bson s = legacy(e);
  Bson t = migrated(e, false);
  Comparison c = comparator.compare(s.get(), t.get());
  EXPECT_TRUE(c.problems.empty()) << joined(c);
  EXPECT_TRUE(c.contained_cur_differs);
}

TEST_F(CompareTest, ACurrentContainedEntryIsIndexedLikeAnyEntry) {
  auto e = entry();
  e.cnt = true;
  e.container = *mongo::oid_from_string("65a1b2c3d4e5f60718293a00");
  Bson s = legacy(e);
  // As the migrator writes it: current, so indexed with its own type's parameters.
  Bson indexed = migrated(e, true);
  ASSERT_TRUE(mongo::View(indexed.get()).has("idx"));
  EXPECT_TRUE(comparator.compare(s.get(), indexed.get()).problems.empty());
  // Without idx, or with a wrong one, the recheck names it.
  schema::CurrentEntry bare = migrate::to_current(e, false, indexer);
  bare.cur = true;
  Bson t = schema::encode_current(bare);
  EXPECT_NE(joined(comparator.compare(s.get(), t.get()))
                .find("'idx' missing on the current version (a contained entry)"),
            std::string::npos);
  schema::CurrentEntry tampered = migrate::to_current(e, true, indexer);
  tampered.idx = index::SearchIndex{index::IndexEntry{"len", {1.0}}};
  Bson t2 = schema::encode_current(tampered);
  EXPECT_NE(joined(comparator.compare(s.get(), t2.get())).find("field 'idx': parameter 'len' is"),
            std::string::npos);
  // History keeps none.
  schema::CurrentEntry history = migrate::to_current(e, true, indexer);
  history.cur = false;
  Bson t3 = schema::encode_current(history);
  EXPECT_NE(joined(comparator.compare(s.get(), t3.get()))
                .find("a contained entry that is not the current version"),
            std::string::npos);
}

VersionFacts facts(const char* hex, int64_t lu, bool cur) {
  return {*mongo::oid_from_string(hex), lu, cur};
}

TEST(VersionState, ExactlyTheNewestIsCurrent) {
  const char* a = "65a1b2c3d4e5f60718293a01";
  const char* b = "65a1b2c3d4e5f60718293a02";
  const char* c = "65a1b2c3d4e5f60718293a03";
  EXPECT_FALSE(check_version_state({facts(a, 1, false), facts(b, 2, false), facts(c, 3, true)}));
  auto two = check_version_state({facts(a, 1, true), facts(b, 2, false), facts(c, 3, true)});
  ASSERT_TRUE(two);
  EXPECT_NE(two->find("2 current versions"), std::string::npos) << *two;
  auto none = check_version_state({facts(a, 1, false), facts(b, 2, false)});
  ASSERT_TRUE(none);
  EXPECT_NE(none->find("no current version"), std::string::npos);
  auto older = check_version_state({facts(a, 1, true), facts(b, 2, false)});
  ASSERT_TRUE(older);
  EXPECT_NE(older->find(std::string("but ") + b + " is newer"), std::string::npos) << *older;
  // Same lu: the larger _id is the newer.
  EXPECT_FALSE(check_version_state({facts(a, 5, false), facts(b, 5, true)}));
  EXPECT_TRUE(check_version_state({facts(a, 5, true), facts(b, 5, false)}));
}

}  // namespace
}  // namespace fhirshift::verify
