// The file reader of `migrate --sourceType Filesystem`: ndjson and Bundles into entries, each
// naming its file and line, bad input as a reason instead of a resource; resuming at a position;
// the importer's deterministic entry ids and version ids.
#include <gtest/gtest.h>

#include <zlib.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "migrate/file_import.h"
#include "migrate/file_progress.h"
#include "migrate/file_source.h"
#include "migrate/transform.h"
#include "mongo/bson.h"
#include "temp_dir.h"

namespace fhirshift::migrate {
namespace {

void write(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

void write_gzip(const std::filesystem::path& p, const std::string& text) {
  gzFile f = gzopen(p.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, text.data(), static_cast<unsigned>(text.size())), static_cast<int>(text.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

std::vector<FileEntry> read_all(FileSource& source) {
  std::vector<FileEntry> out;
  while (auto e = source.next()) out.push_back(std::move(*e));
  return out;
}

const std::string kPatient = R"({"resourceType":"Patient","id":"p1","name":[{"family":"Müller"}]})";
const std::string kObservation =
    R"({"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.50}})";

TEST(FileSource, GzipNdjsonIsReadLikePlainNdjsonAndBytesReadReachTheCompressedSize) {
  testing::TempDir dir;
  // Many lines, so that the compressed file is read in several blocks.
  std::string text;
  for (int i = 0; i < 20000; ++i)
    text += R"({"resourceType":"Patient","id":"p)" + std::to_string(i) + R"(","name":[{"family":"Müller"}]})" + "\n";
  text += "{not json\n";
  write_gzip(dir.path() / "b.ndjson.gz", text);
  write(dir.path() / "a.ndjson", kPatient + "\n");
  write(dir.path() / "ignored.txt.gz", "not an export\n");
  FileSource source(dir.path());
  ASSERT_EQ(source.files().size(), 2u);
  const int64_t gz_size = static_cast<int64_t>(std::filesystem::file_size(dir.path() / "b.ndjson.gz"));
  const int64_t plain_size = static_cast<int64_t>(kPatient.size() + 1);
  EXPECT_EQ(source.bytes_total(), gz_size + plain_size);
  EXPECT_LT(gz_size, static_cast<int64_t>(text.size()) / 4) << "the test file should be compressed";
  EXPECT_EQ(source.bytes_read(), 0);
  int64_t n = 0, last_bytes = 0;
  bool grew_inside_the_gzip_file = false;
  std::optional<FileEntry> last;
  while (auto e = source.next()) {
    int64_t bytes = source.bytes_read();
    EXPECT_GE(bytes, last_bytes);
    if (bytes > plain_size && bytes < plain_size + gz_size) grew_inside_the_gzip_file = true;
    last_bytes = bytes;
    ++n;
    if (n == 2) {
      EXPECT_EQ(e->file.filename(), "b.ndjson.gz");
      EXPECT_EQ(e->id, "p0");
      EXPECT_EQ(e->json, R"({"resourceType":"Patient","id":"p0","name":[{"family":"Müller"}]})");
    }
    last = std::move(e);
  }
  EXPECT_EQ(n, 1 + 20000 + 1);
  EXPECT_TRUE(grew_inside_the_gzip_file) << "bytes read should follow the compressed file, not jump at its end";
  EXPECT_EQ(source.bytes_read(), source.bytes_total());
  ASSERT_TRUE(last);
  EXPECT_EQ(last->reason, "invalid-json");
  EXPECT_NE(last->problem.find("b.ndjson.gz line 20001"), std::string::npos) << last->problem;

  // A resume skips into the compressed file.
  FileSource resumed(dir.path());
  resumed.seek({"b.ndjson.gz", 19999});
  auto e = resumed.next();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->id, "p19999");
}

TEST(FileSource, ATruncatedGzipFileIsABrokenSourceNamingTheFile) {
  testing::TempDir dir;
  std::string text;
  for (int i = 0; i < 5000; ++i) text += R"({"resourceType":"Patient","id":"p)" + std::to_string(i) + "\"}\n";
  write_gzip(dir.path() / "whole.ndjson.gz", text);
  std::ifstream in(dir.path() / "whole.ndjson.gz", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  write(dir.path() / "cut.ndjson.gz", bytes.substr(0, bytes.size() / 2));
  FileSource source(dir.path() / "cut.ndjson.gz");
  try {
    while (source.next()) {
    }
    FAIL() << "a truncated gzip file read to its end without an error";
  } catch (const FileSourceError& e) {
    EXPECT_NE(std::string(e.what()).find("cut.ndjson.gz"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("gzip -t"), std::string::npos) << e.what();
  }
}

TEST(FileSource, NdjsonLinesBecomeEntriesAndBadLinesCarryFileAndLine) {
  testing::TempDir dir;
  write(dir.path() / "a.ndjson", kPatient + "\n\n" + kObservation + "\r\n{not json\n" +
                                     R"({"resourceType":"Patient","name":[]})" + "\n" +
                                     R"({"resourceType":"Nonsense","id":"x"})" + "\n" +
                                     R"({"resourceType":"Patient","id":"a b"})" + "\n" + R"([1,2])" + "\n");
  FileSource source(dir.path());
  std::vector<FileEntry> e = read_all(source);
  ASSERT_EQ(e.size(), 7u);
  EXPECT_TRUE(e[0].ok());
  EXPECT_EQ(e[0].type, "Patient");
  EXPECT_EQ(e[0].id, "p1");
  EXPECT_EQ(e[0].json, kPatient);
  EXPECT_EQ(e[0].line, 1);
  // The blank line is skipped, the CR of a CRLF line dropped, the body kept byte for byte.
  EXPECT_EQ(e[1].line, 3);
  EXPECT_EQ(e[1].ordinal, 2);
  EXPECT_EQ(e[1].json, kObservation);
  EXPECT_EQ(e[2].reason, "invalid-json");
  EXPECT_NE(e[2].problem.find("a.ndjson line 4: not valid JSON"), std::string::npos) << e[2].problem;
  EXPECT_EQ(e[2].excerpt, "{not json");
  EXPECT_EQ(e[3].reason, "bad-field");
  EXPECT_NE(e[3].problem.find("line 5: the Patient has no id"), std::string::npos) << e[3].problem;
  EXPECT_EQ(e[4].reason, "unknown-type");
  EXPECT_EQ(e[5].reason, "bad-field");
  EXPECT_NE(e[5].problem.find("'a b' is not a FHIR id"), std::string::npos) << e[5].problem;
  EXPECT_EQ(e[6].reason, "invalid-json");
  EXPECT_NE(e[6].problem.find("line 8: not a JSON object"), std::string::npos) << e[6].problem;
}

TEST(FileSource, OversizedAndMalformedContainedAreRefused) {
  FileEntry big;
  big.file = "big.ndjson";
  big.line = 1;
  std::string text = R"({"resourceType":"Binary","id":"b","data":")" + std::string(kMaxBodyBytes, 'A') + "\"}";
  read_resource(big, text);
  EXPECT_EQ(big.reason, "oversized");
  EXPECT_EQ(big.excerpt.size(), 300u);

  FileEntry dup;
  dup.file = "c.ndjson";
  dup.line = 2;
  read_resource(dup, R"({"resourceType":"Patient","id":"p","contained":[{"resourceType":"Organization","id":"o"},)"
                     R"({"resourceType":"Organization","id":"o"}]})");
  EXPECT_EQ(dup.reason, "bad-resource");
  EXPECT_NE(dup.problem.find("c.ndjson line 2: "), std::string::npos) << dup.problem;
}

TEST(FileSource, TransactionBundleEntriesKeepTheirBytesAndLines) {
  testing::TempDir dir;
  std::string bundle = "{\n  \"resourceType\": \"Bundle\",\n  \"type\": \"transaction\",\n  \"entry\": [\n"
                       "    {\"fullUrl\": \"urn:uuid:1\", \"resource\": " + kObservation + ",\n"
                       "     \"request\": {\"method\": \"PUT\", \"url\": \"Observation/o1\"}},\n"
                       "    {\"request\": {\"method\": \"DELETE\", \"url\": \"Patient/p9\"}},\n"
                       "    {\"resource\": {\"resourceType\": \"Patient\"}, \"request\": {\"method\": \"POST\", \"url\": \"Patient\"}},\n"
                       "    {\"resource\": " + kPatient + "}\n  ]\n}\n";
  write(dir.path() / "tx.json", bundle);
  FileSource source(dir.path() / "tx.json");
  std::vector<FileEntry> e = read_all(source);
  ASSERT_EQ(e.size(), 4u);
  EXPECT_TRUE(e[0].ok()) << e[0].problem;
  EXPECT_EQ(e[0].json, kObservation);  // 1.50 stays 1.50
  EXPECT_EQ(e[0].line, 5);
  EXPECT_EQ(e[0].where(), (dir.path() / "tx.json").string() + " entry 1 (line 5)");
  EXPECT_EQ(e[1].reason, "no-resource");
  EXPECT_NE(e[1].problem.find("entry 2 (line 7): the entry has no resource (request DELETE Patient/p9)"),
            std::string::npos)
      << e[1].problem;
  EXPECT_EQ(e[2].reason, "bad-field");
  EXPECT_EQ(e[2].line, 8);
  EXPECT_TRUE(e[3].ok());
  EXPECT_EQ(e[3].json, kPatient);
  EXPECT_EQ(e[3].line, 9);
}

TEST(FileSource, OtherBundleTypesAndInvalidFilesAreOneProblemEach) {
  testing::TempDir dir;
  write(dir.path() / "1-search.json",
        R"({"resourceType":"Bundle","type":"searchset","entry":[{"resource":)" + kPatient + "}]}");
  write(dir.path() / "2-broken.json", R"({"resourceType":"Bundle","type":"batch","entry":[)");
  write(dir.path() / "3-single.json", "\n" + kPatient + "\n");
  write(dir.path() / "4-ignored.txt", kPatient);
  FileSource source(dir.path());
  ASSERT_EQ(source.files().size(), 3u);
  std::vector<FileEntry> e = read_all(source);
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].reason, "unsupported-bundle-type");
  EXPECT_NE(e[0].problem.find("a Bundle of type 'searchset'"), std::string::npos) << e[0].problem;
  EXPECT_EQ(e[1].reason, "invalid-json");
  EXPECT_TRUE(e[2].ok()) << e[2].problem;
  EXPECT_EQ(e[2].json, kPatient);
}

TEST(FileSource, SeekResumesAfterTheCheckpointInNameOrder) {
  testing::TempDir dir;
  write(dir.path() / "b.ndjson", kPatient + "\n" + kObservation + "\n");
  write(dir.path() / "a.ndjson", kObservation + "\n" + kPatient + "\n");
  FileSource first(dir.path());
  ASSERT_TRUE(first.next());
  ASSERT_TRUE(first.next());
  EXPECT_EQ(first.position().file, "a.ndjson");
  EXPECT_EQ(first.position().entries, 2);
  ASSERT_TRUE(first.next());
  FilePosition p = first.position();
  EXPECT_EQ(p.file, "b.ndjson");
  EXPECT_EQ(p.entries, 1);

  FileSource resumed(dir.path());
  resumed.seek(p);
  std::vector<FileEntry> rest = read_all(resumed);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].type, "Observation");
  EXPECT_EQ(rest[0].line, 2);

  FileSource gone(dir.path());
  EXPECT_THROW(gone.seek({"c.ndjson", 1}), FileSourceError);
  EXPECT_THROW(gone.seek({"a.ndjson", 3}), FileSourceError);  // the file shrank
  EXPECT_THROW(FileSource(dir.path() / "missing"), FileSourceError);
}

TEST(FileImportIds, EntryIdsAreDeterministicAndSortInFileOrder) {
  bson_oid_t run;
  bson_oid_init(&run, nullptr);
  bson_oid_t a = import_entry_id(run, 7, 0), b = import_entry_id(run, 7, 0), c = import_entry_id(run, 7, 1),
             d = import_entry_id(run, 8, 0);
  EXPECT_TRUE(bson_oid_equal(&a, &b));
  EXPECT_LT(bson_oid_compare(&a, &c), 0);
  EXPECT_LT(bson_oid_compare(&c, &d), 0);
  EXPECT_EQ(bson_oid_get_time_t(&a), bson_oid_get_time_t(&run));
}

TEST(FileImportIds, NextVersionCountsOnFromNumbersElseFromTheVersionCount) {
  EXPECT_EQ(next_version_id("1", 0), "2");
  EXPECT_EQ(next_version_id("41", 0), "42");
  EXPECT_EQ(next_version_id("abc", 3), "4");
}

TEST(FileProgress, BytesOfTheTotalEntriesPerSecondAndAnEtaFromThisRunsSpeed) {
  FileProgress p;
  p.bytes_total = int64_t{1} << 30;
  EXPECT_EQ(p.line(), "0 KB of 1.00 GB read (0%), 0 file entries, 0 entries/s, ETA unknown");
  // A resume that starts at a quarter: the ETA comes from what this run read in its 10 s.
  p.bytes_at_start = p.bytes_total / 4;
  p.bytes_read = p.bytes_total / 2;
  p.entries = 12345;
  p.seconds = 10;
  EXPECT_EQ(p.line(), "512.0 MB of 1.00 GB read (50%), 12,345 file entries, 1,235 entries/s, ETA 00:00:20");
  nlohmann::json j = nlohmann::json::parse(p.json(R"({"phase":"copying"})"));
  EXPECT_EQ(j["phase"], "copying");
  EXPECT_EQ(j["bytesRead"], p.bytes_read);
  EXPECT_EQ(j["bytesTotal"], p.bytes_total);
  EXPECT_EQ(j["fileEntries"], 12345);
  EXPECT_EQ(j["entriesPerSecond"], 1235);
  EXPECT_EQ(j["etaSeconds"], 20);
  // Half the bytes remain, twice what this run read in its 3 h 10 s.
  p.seconds = 3 * 3600 + 10;
  EXPECT_NE(p.line().find("ETA 06:00:20"), std::string::npos) << p.line();
  // While a limit holds it back the line says why, as the database copy's does.
  EXPECT_EQ(p.line().find("THROTTLED"), std::string::npos) << p.line();
  p.throttled = "max rate 25 entries/s";
  EXPECT_TRUE(p.line().ends_with(", THROTTLED: max rate 25 entries/s")) << p.line();
}

}  // namespace
}  // namespace fhirshift::migrate
