// The driver layer against two live FerretDB servers side by side (source and target).
#include <gtest/gtest.h>

#include <thread>

#include "ferretdb_server.h"
#include "mongo/client.h"
#include "mongo/error.h"

namespace fhirshift {
namespace {

using mongo::Bson;
using mongo::Builder;
using mongo::View;

class DriverTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    source_ = new testing::FerretDbServer();
    target_ = new testing::FerretDbServer();
  }
  static void TearDownTestSuite() {
    delete source_;
    delete target_;
  }
  static testing::FerretDbServer* source_;
  static testing::FerretDbServer* target_;
};
testing::FerretDbServer* DriverTest::source_ = nullptr;
testing::FerretDbServer* DriverTest::target_ = nullptr;

Bson doc_with_id(int i) {
  Builder b;
  b.append("_id", int32_t{i}).append("n", int32_t{i * 10});
  return b.extract();
}

// Inserts documents with `_id` 0 .. n-1 in one bulk write.
void insert_ids(mongo::Collection& coll, int n) {
  auto bulk = coll.bulk();
  for (int i = 0; i < n; ++i) bulk.insert(doc_with_id(i).get());
  ASSERT_EQ(bulk.execute().inserted, n);
}

TEST_F(DriverTest, TwoServersAreIndependent) {
  ASSERT_NE(source_->port(), target_->port());
  mongo::ClientPool src(mongo::Uri::parse(source_->uri("twoservers")));
  mongo::ClientPool dst(mongo::Uri::parse(target_->uri("twoservers")));
  auto s = src.acquire();
  auto d = dst.acquire();
  s.ping();
  d.ping();
  s.collection("twoservers", "c").insert_one(doc_with_id(1).get());
  EXPECT_EQ(s.collection("twoservers", "c").count(Bson().get()), 1);
  EXPECT_EQ(d.collection("twoservers", "c").count(Bson().get()), 0);
}

TEST_F(DriverTest, CursorHonoursSortAndBatchSize) {
  mongo::ClientPool pool(mongo::Uri::parse(source_->uri("cursor")));
  auto client = pool.acquire();
  auto coll = client.collection("cursor", "c");
  auto bulk = coll.bulk();
  for (int i = 250; i > 0; --i) bulk.insert(doc_with_id(i).get());
  EXPECT_EQ(bulk.execute().inserted, 250);

  Builder opts;
  opts.document("sort", [](Builder& s) { s.append("_id", int32_t{1}); }).append("batchSize", int32_t{7});
  mongo::Cursor cursor = coll.find(Bson().get(), opts.extract().get());
  int expected = 1;
  while (const bson_t* doc = cursor.next()) {
    EXPECT_EQ(View(doc).integer("_id"), expected);
    ++expected;
  }
  EXPECT_EQ(expected, 251);
}

TEST_F(DriverTest, UnorderedBulkReportsEachFailedDocumentByIndex) {
  mongo::ClientPool pool(mongo::Uri::parse(target_->uri("bulk")));
  auto client = pool.acquire();
  auto coll = client.collection("bulk", "c");
  coll.insert_one(doc_with_id(2).get());
  auto bulk = coll.bulk(/*ordered=*/false);
  for (int i : {1, 2, 3, 2, 4}) bulk.insert(doc_with_id(i).get());
  mongo::BulkResult r = bulk.execute();
  EXPECT_EQ(r.inserted, 3);
  ASSERT_EQ(r.write_errors.size(), 2u);
  EXPECT_EQ(r.write_errors[0].index, 1u);
  EXPECT_EQ(r.write_errors[1].index, 3u);
  EXPECT_EQ(r.write_errors[0].code, 11000);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(coll.count(Bson().get()), 4);
}

TEST_F(DriverTest, OrderedBulkStopsAtTheFirstFailure) {
  mongo::ClientPool pool(mongo::Uri::parse(target_->uri("ordered")));
  auto client = pool.acquire();
  auto coll = client.collection("ordered", "c");
  auto bulk = coll.bulk(/*ordered=*/true);
  for (int i : {1, 1, 2}) bulk.insert(doc_with_id(i).get());
  mongo::BulkResult r = bulk.execute();
  EXPECT_EQ(r.inserted, 1);
  ASSERT_EQ(r.write_errors.size(), 1u);
  EXPECT_EQ(r.write_errors[0].index, 1u);
  EXPECT_EQ(coll.count(Bson().get()), 1);
}

TEST_F(DriverTest, UpsertsAndUpdatesCountWhatTheyDid) {
  mongo::ClientPool pool(mongo::Uri::parse(target_->uri("upsert")));
  auto client = pool.acquire();
  auto coll = client.collection("upsert", "c");
  Builder f1, u1, f2, u2;
  f1.append("_id", int32_t{1});
  u1.document("$set", [](Builder& s) { s.append("n", int32_t{5}); });
  auto bulk = coll.bulk();
  bulk.update_one(f1.get(), u1.get(), /*upsert=*/true);
  EXPECT_EQ(bulk.execute().upserted, 1);
  f2.append("_id", int32_t{1});
  u2.document("$set", [](Builder& s) { s.append("n", int32_t{6}); });
  auto again = coll.bulk();
  again.update_one(f2.get(), u2.get(), /*upsert=*/false);
  mongo::BulkResult r = again.execute();
  EXPECT_EQ(r.matched, 1);
  EXPECT_EQ(r.modified, 1);
  EXPECT_EQ(View(coll.find_one(f2.get())->get()).integer("n"), 6);
}

TEST_F(DriverTest, StatsCountIsTheCollectionsDocumentCount) {
  mongo::ClientPool pool(mongo::Uri::parse(target_->uri("stats")));
  auto client = pool.acquire();
  auto coll = client.collection("stats", "c");
  ASSERT_NO_FATAL_FAILURE(insert_ids(coll, 42));
  EXPECT_EQ(coll.stats_count(), 42);
}

// FerretDB 1.24 holds a backend connection per update statement until the command ends: one
// command of 300 updates would wait forever (its SQLite pool has 100). The writer sends them a
// few per command and still reports each failure by its index among all operations.
TEST_F(DriverTest, ABulkOfManyUpdatesCompletesAndIndexesFailuresAcrossCommands) {
  mongo::ClientPool pool(mongo::Uri::parse(target_->uri("manyupdates")));
  auto client = pool.acquire();
  auto coll = client.collection("manyupdates", "c");
  ASSERT_NO_FATAL_FAILURE(insert_ids(coll, 300));
  auto bulk = coll.bulk(/*ordered=*/false);
  for (int i = 0; i < 300; ++i) {
    Builder f, u;
    f.append("_id", int32_t{i});
    u.document("$set", [](Builder& s) { s.append("n", int32_t{7}); });
    bulk.update_one(f.get(), u.get(), /*upsert=*/false);
    if (i == 150) bulk.insert(doc_with_id(3).get());  // operation 151: a duplicate _id
  }
  mongo::BulkResult r = bulk.execute();
  EXPECT_EQ(r.matched, 300);
  EXPECT_EQ(r.modified, 300);
  ASSERT_EQ(r.write_errors.size(), 1u);
  EXPECT_EQ(r.write_errors[0].index, 151u);
  EXPECT_EQ(r.write_errors[0].code, 11000);
  Builder seven;
  seven.append("n", int32_t{7});
  EXPECT_EQ(coll.count(seven.get()), 300);
}

TEST_F(DriverTest, PoolServesSeveralThreads) {
  mongo::ClientPool pool(mongo::Uri::parse(target_->uri("threads")));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&pool, t] {
      auto client = pool.acquire();
      auto coll = client.collection("threads", "c");
      auto bulk = coll.bulk();
      for (int i = 0; i < 50; ++i) bulk.insert(doc_with_id(t * 1000 + i).get());
      bulk.execute();
    });
  }
  for (auto& th : threads) th.join();
  auto client = pool.acquire();
  EXPECT_EQ(client.collection("threads", "c").count(Bson().get()), 200);
}

TEST_F(DriverTest, ServerErrorsCarryTheServerCodeAndContext) {
  mongo::ClientPool pool(mongo::Uri::parse(target_->uri("errors")));
  auto client = pool.acquire();
  Builder cmd;
  cmd.append("noSuchCommandAtAll", int32_t{1});
  try {
    client.command("errors", cmd.extract());
    FAIL() << "expected MongoError";
  } catch (const mongo::MongoError& e) {
    EXPECT_EQ(e.code(), 59u);  // CommandNotFound
    EXPECT_NE(std::string(e.what()).find("noSuchCommandAtAll"), std::string::npos) << e.what();
    EXPECT_FALSE(e.is_transient());
  }
}

TEST_F(DriverTest, UnreachableHostFailsFastNamingTheHost) {
  // A port nothing listens on: bind one and close it.
  testing::FerretDbServer gone;
  std::string uri = gone.uri("x");
  int port = gone.port();
  gone.stop();
  mongo::ClientPool pool(mongo::Uri::parse(uri + "?serverSelectionTimeoutMS=1000"));
  auto client = pool.acquire();
  auto started = std::chrono::steady_clock::now();
  try {
    client.ping();
    FAIL() << "expected MongoError";
  } catch (const mongo::MongoError& e) {
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(port)), std::string::npos) << e.what();
    EXPECT_TRUE(e.is_transient()) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
}

TEST_F(DriverTest, DescribesAStandaloneServer) {
  mongo::ClientPool pool(mongo::Uri::parse(source_->uri("topology")));
  auto client = pool.acquire();
  mongo::Topology t = mongo::describe_topology(client);
  EXPECT_FALSE(t.is_mongos);
  EXPECT_GT(t.max_wire_version, 0);
}

}  // namespace
}  // namespace fhirshift
