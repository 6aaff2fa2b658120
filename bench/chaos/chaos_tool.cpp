// The generating and checking half of the fault campaign (bench/chaos/run.sh starts the servers,
// runs fhirshift and injects the crashes). Every subcommand prints one result line and exits 0
// only when what it checks holds.
//
//   chaos_tool bad-legacy --uri URI --count N --expected FILE [--seed S]
//     Inserts N bad legacy entries of every kind (docs/reliability.md lists them) into the
//     collection, their _ids spread over the _id range the store already has, so that they lie
//     between the good entries. FILE gets one line per entry: _id, expected quarantine reason, kind.
//   chaos_tool bad-files --dir DIR --bad N --good M --expected FILE [--seed S]
//     Writes M good resources and N bad ndjson lines and Bundle entries/files into DIR. FILE gets
//     one line per bad one: file name, line, expected reason, kind.
//   chaos_tool good-files --dir DIR --resources N [--seed S]
//     Writes N good resources with distinct ids (some with contained resources) as ndjson.
//   chaos_tool check-quarantine --uri URI --expected FILE (--legacy | --files)
//     Every expected bad entry has a quarantine record with its reason, and nothing else is there.
//   chaos_tool check-import --uri URI --resources N
//     The target holds exactly N resources, each once, as version 1, current, with every contained
//     entry beside its container: what a file import of `good-files` must leave however often it
//     was killed.
//   chaos_tool count --uri URI
//     The number of entries (documents with a `type`) of the collection.
//   chaos_tool hostile --url URL --uri URI --count N [--seed S]
//     Sends N malformed or oversized requests to a `fhirshift serve`; every answer must be a 4xx
//     with an OperationOutcome, and the collection must hold the same entries afterwards.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "corpus/generator.h"
#include "mongo/client.h"
#include "mongo/collection.h"
#include "schema/entry.h"

namespace {

using namespace fhirshift;
namespace fs = std::filesystem;

constexpr size_t kOversized = 15 * 1024 * 1024 + 1;  // one byte above the migrator's body limit

std::string hex(const bson_oid_t& oid) { return mongo::oid_to_string(oid); }

// ---------------------------------------------------------------------------------------------
// Bad legacy entries

// A well-formed legacy entry of a resource of its own ("bad-<n>"), which each kind then breaks in
// one way.
struct LegacyDraft {
  bson_oid_t id;
  std::string type = "Patient";
  std::string res_id;
  int64_t lu_ms = 0;
  std::string json;
};

std::string patient_json(const std::string& id) {
  return R"({"resourceType":"Patient","id":")" + id +
         R"(","meta":{"versionId":"1"},"active":true,"name":[{"family":"Müller","given":["Zoë"]}]})";
}

// The fields of a legacy entry in order, each overridable: a field set to nullopt is left out.
struct Fields {
  std::map<std::string, std::function<void(mongo::Builder&, const std::string&)>> set;
  std::set<std::string> omit;
};

mongo::Bson build_legacy(const LegacyDraft& d, const Fields& f, bool with_id = true) {
  mongo::Builder b;
  auto put = [&](const std::string& key, const std::function<void(mongo::Builder&, const std::string&)>& normal) {
    if (f.omit.count(key)) return;
    if (auto it = f.set.find(key); it != f.set.end()) it->second(b, key);
    else normal(b, key);
  };
  if (with_id) b.append("_id", d.id);
  put("im", [](mongo::Builder& x, const std::string& k) { x.append(k, "Fhir4.0"); });
  put("type", [&](mongo::Builder& x, const std::string& k) { x.append(k, d.type); });
  put("res_id", [&](mongo::Builder& x, const std::string& k) { x.append(k, d.res_id); });
  put("v", [](mongo::Builder& x, const std::string& k) { x.append(k, "1"); });
  put("lu", [&](mongo::Builder& x, const std::string& k) { x.append_date(k, d.lu_ms); });
  put("cur", [](mongo::Builder& x, const std::string& k) { x.append(k, true); });
  put("change", [](mongo::Builder& x, const std::string& k) { x.append(k, "c"); });
  put("cnt", [](mongo::Builder& x, const std::string& k) { x.append(k, false); });
  put("json", [&](mongo::Builder& x, const std::string& k) { x.append(k, d.json); });
  return b.extract();
}

using Setter = std::function<void(mongo::Builder&, const std::string&)>;

// Values of every BSON type but the one a field must have.
std::vector<std::pair<std::string, Setter>> wrong_types(bson_type_t right) {
  std::vector<std::pair<std::string, Setter>> all = {
      {"int32", [](mongo::Builder& b, const std::string& k) { b.append(k, int32_t{7}); }},
      {"int64", [](mongo::Builder& b, const std::string& k) { b.append(k, int64_t{1} << 40); }},
      {"double", [](mongo::Builder& b, const std::string& k) { b.append(k, 1.5); }},
      {"string", [](mongo::Builder& b, const std::string& k) { b.append(k, "true"); }},
      {"bool", [](mongo::Builder& b, const std::string& k) { b.append(k, true); }},
      {"null", [](mongo::Builder& b, const std::string& k) { b.append_null(k); }},
      {"date", [](mongo::Builder& b, const std::string& k) { b.append_date(k, 1700000000000); }},
      {"array", [](mongo::Builder& b, const std::string& k) {
         b.array(k, [](mongo::ArrayBuilder& a) { a.append(std::string("Patient")); });
       }},
      {"document", [](mongo::Builder& b, const std::string& k) {
         b.document(k, [](mongo::Builder& d) { d.append("x", "y"); });
       }},
  };
  std::map<std::string, bson_type_t> type_of = {
      {"int32", BSON_TYPE_INT32}, {"int64", BSON_TYPE_INT64}, {"double", BSON_TYPE_DOUBLE},
      {"string", BSON_TYPE_UTF8}, {"bool", BSON_TYPE_BOOL},   {"null", BSON_TYPE_NULL},
      {"date", BSON_TYPE_DATE_TIME}, {"array", BSON_TYPE_ARRAY}, {"document", BSON_TYPE_DOCUMENT}};
  std::vector<std::pair<std::string, Setter>> out;
  for (auto& [name, setter] : all)
    if (type_of[name] != right) out.emplace_back(name, setter);
  return out;
}

Setter str(std::string value) {
  return [value](mongo::Builder& b, const std::string& k) { b.append(k, value); };
}

struct Kind {
  std::string name;
  std::string reason;
  // Breaks a draft: field overrides, or a replacement body.
  std::function<void(LegacyDraft&, Fields&, std::mt19937_64&)> apply;
  int max = -1;  // at most this many (the 15 MiB bodies), -1: no limit
  // Inserted after a good entry of the same type, res_id and version (its twin, with a smaller
  // `_id`): the twin is migrated, this one quarantined.
  bool twin = false;
};

std::string deep(int depth) {
  return std::string(static_cast<size_t>(depth), '[') + std::string(static_cast<size_t>(depth), ']');
}

std::vector<Kind> legacy_kinds() {
  std::vector<Kind> k;
  auto body = [](std::function<std::string(const LegacyDraft&, std::mt19937_64&)> make) {
    return [make](LegacyDraft& d, Fields&, std::mt19937_64& rng) { d.json = make(d, rng); };
  };
  k.push_back({"json-truncated", "invalid-json", body([](const LegacyDraft& d, std::mt19937_64& rng) {
                 std::string full = patient_json(d.res_id);
                 return full.substr(0, 1 + rng() % (full.size() - 2));
               })});
  k.push_back({"json-garbage", "invalid-json", body([](const LegacyDraft&, std::mt19937_64& rng) {
                 std::string s = "{";
                 for (int i = 0; i < 40; ++i) s += static_cast<char>('!' + rng() % 90);
                 return s;
               })});
  for (const char* v : {"[1,2,3]", "\"Patient\"", "42", "null", "", "   "})
    k.push_back({std::string("json-not-object:") + v, "invalid-json",
                 body([v](const LegacyDraft&, std::mt19937_64&) { return std::string(v); })});
  k.push_back({"json-deep-nesting", "invalid-json", body([](const LegacyDraft& d, std::mt19937_64&) {
                 return R"({"resourceType":"Patient","id":")" + d.res_id + R"(","extension":)" + deep(5000) + "}";
               })});
  k.push_back({"json-invalid-utf8", "invalid-json", body([](const LegacyDraft& d, std::mt19937_64&) {
                 return R"({"resourceType":"Patient","id":")" + d.res_id + "\",\"name\":[{\"family\":\"M\xC3\x28ller\xFF\"}]}";
               })});
  k.push_back({"json-resourceType-other", "type-mismatch", body([](const LegacyDraft& d, std::mt19937_64&) {
                 return R"({"resourceType":"Observation","id":")" + d.res_id + R"(","status":"final"})";
               })});
  k.push_back({"json-resourceType-missing", "type-mismatch", body([](const LegacyDraft& d, std::mt19937_64&) {
                 return R"({"id":")" + d.res_id + R"(","active":true})";
               })});
  k.push_back({"json-resourceType-number", "type-mismatch", body([](const LegacyDraft& d, std::mt19937_64&) {
                 return R"({"resourceType":7,"id":")" + d.res_id + R"("})";
               })});
  k.push_back({"json-id-other", "id-mismatch", body([](const LegacyDraft&, std::mt19937_64&) {
                 return patient_json("someone-else");
               })});
  k.push_back({"json-id-missing", "id-mismatch", body([](const LegacyDraft&, std::mt19937_64&) {
                 return std::string(R"({"resourceType":"Patient","active":true})");
               })});
  k.push_back({"json-oversized", "oversized",
               body([](const LegacyDraft& d, std::mt19937_64&) {
                 std::string s = R"({"resourceType":"Patient","id":")" + d.res_id + R"(","text":{"div":")";
                 s.append(kOversized, 'x');
                 return s + "\"}}";
               }),
               2});
  // Wrong BSON types of every field ("type" absent is a system document by the contract, not a
  // bad entry, so only its wrong types are here).
  const std::vector<std::pair<std::string, bson_type_t>> fields = {
      {"im", BSON_TYPE_UTF8},   {"type", BSON_TYPE_UTF8}, {"res_id", BSON_TYPE_UTF8},
      {"v", BSON_TYPE_UTF8},    {"lu", BSON_TYPE_DATE_TIME}, {"cur", BSON_TYPE_BOOL},
      {"change", BSON_TYPE_UTF8}, {"cnt", BSON_TYPE_BOOL}, {"json", BSON_TYPE_UTF8}};
  for (const auto& [field, right] : fields)
    for (auto& [tname, setter] : wrong_types(right)) {
      if (field == "cnt" && tname == "null") continue;  // handled like the other wrong types below
      k.push_back({"wrong-type:" + field + "=" + tname, "bad-field",
                   [f = field, s = setter](LegacyDraft&, Fields& x, std::mt19937_64&) { x.set[f] = s; }});
    }
  for (const char* field : {"im", "res_id", "v", "lu", "cur", "change", "json"})
    k.push_back({std::string("missing:") + field, "bad-field",
                 [f = std::string(field)](LegacyDraft&, Fields& x, std::mt19937_64&) { x.omit.insert(f); }});
  auto value = [&](const std::string& name, const std::string& field, const std::string& v) {
    k.push_back({"bad-value:" + name, "bad-field",
                 [field, v](LegacyDraft&, Fields& x, std::mt19937_64&) { x.set[field] = str(v); }});
  };
  value("im=Fhir5.0", "im", "Fhir5.0");
  value("type=lowercase", "type", "patient");
  value("type=empty", "type", "");
  value("res_id=path", "res_id", "../../etc/passwd");
  value("res_id=slash", "res_id", "a/b");
  value("res_id=space", "res_id", "a b");
  value("res_id=65chars", "res_id", std::string(65, 'a'));
  value("res_id=empty", "res_id", "");
  value("res_id=invalid-utf8", "res_id", "p\xC3\x28");
  value("v=empty", "v", "");
  value("change=x", "change", "x");
  k.push_back({"bad-value:container-on-resource", "bad-field", [](LegacyDraft&, Fields& x, std::mt19937_64&) {
                 x.set["cnt"] = [](mongo::Builder& b, const std::string& key) {
                   bson_oid_t c;
                   bson_oid_init(&c, nullptr);
                   b.append(key, false).append("container", c);
                 };
               }});
  k.push_back({"bad-value:contained-without-container", "bad-field",
               [](LegacyDraft&, Fields& x, std::mt19937_64&) {
                 x.set["cnt"] = [](mongo::Builder& b, const std::string& key) { b.append(key, true); };
               }});
  k.push_back({"bad-value:container-not-oid", "bad-field", [](LegacyDraft&, Fields& x, std::mt19937_64&) {
                 x.set["cnt"] = [](mongo::Builder& b, const std::string& key) {
                   b.append(key, true).append("container", "65a1b2c3d4e5f60718293a4b");
                 };
               }});
  k.push_back({"bad-value:tombstone-with-json", "bad-field", [](LegacyDraft&, Fields& x, std::mt19937_64&) {
                 x.set["change"] = str("d");
               }});
  // Two entries of one version with different bodies, both current (a lost-update race of the
  // old server's writers): the first in `_id` order is kept.
  k.push_back({"duplicate-version", "duplicate-version", body([](const LegacyDraft& d, std::mt19937_64&) {
                 std::string json = patient_json(d.res_id);
                 return json.replace(json.find("\"active\":true"), 13, "\"active\":false");
               }),
               -1, true});
  return k;
}

// An ObjectId whose timestamp lies in [lo, hi] seconds, so that it sorts between the store's entries.
bson_oid_t oid_between(uint32_t lo, uint32_t hi, std::mt19937_64& rng) {
  uint8_t b[12];
  uint32_t secs = lo + static_cast<uint32_t>(rng() % (uint64_t{hi - lo} + 1));
  b[0] = secs >> 24; b[1] = secs >> 16; b[2] = secs >> 8; b[3] = secs;
  b[4] = 0xBA; b[5] = 0xD0;  // not the seed's machine bytes: never equal to a good entry's _id
  uint64_t r = rng();
  for (int i = 6; i < 12; ++i) b[i] = static_cast<uint8_t>(r >> (8 * (i - 6)));
  bson_oid_t oid;
  bson_oid_init_from_data(&oid, b);
  return oid;
}

int bad_legacy(const std::string& uri, const std::string& collection, int count, uint64_t seed,
               const std::string& expected_path) {
  mongo::ensure_driver_initialized();
  mongo::ClientPool pool(mongo::Uri::parse(uri), "chaos-tool");
  mongo::Client client = pool.acquire();
  auto coll = client.collection(pool.database(), collection);
  // The _id range of the store (a small store: FerretDB sorts it whole, that is fine here).
  auto edge = [&](int dir) -> uint32_t {
    mongo::Builder o;
    o.document("sort", [&](mongo::Builder& s) { s.append("_id", int32_t{dir}); }).append("limit", int64_t{1});
    mongo::Builder f;
    f.document("_id", [](mongo::Builder& t) { t.append("$type", "objectId"); });
    auto c = coll.find(f.get(), o.get());
    const bson_t* d = c.next();
    if (!d) throw std::runtime_error("the store is empty: seed it first");
    bson_oid_t id = *mongo::View(d).oid("_id");
    return static_cast<uint32_t>(bson_oid_get_time_t(&id));
  };
  const uint32_t lo = edge(1), hi = edge(-1);
  std::mt19937_64 rng(seed);
  std::vector<Kind> kinds = legacy_kinds();
  std::map<std::string, int> made;
  std::ofstream expected(expected_path);
  int written = 0, refused = 0, altered = 0;
  int64_t lu_base = int64_t{lo} * 1000;
  for (int n = 0; written < count; ++n) {
    const Kind& kind = kinds[static_cast<size_t>(n) % kinds.size()];
    if (kind.max >= 0 && made[kind.name] >= kind.max) continue;
    LegacyDraft d;
    d.id = oid_between(lo, hi, rng);
    d.res_id = "bad-" + std::to_string(n);
    d.lu_ms = lu_base + static_cast<int64_t>(rng() % (uint64_t{hi - lo} * 1000 + 1));
    d.json = patient_json(d.res_id);
    Fields f;
    if (kind.twin) {
      LegacyDraft twin = d;
      for (twin.id = oid_between(lo, hi, rng); bson_oid_equal(&twin.id, &d.id);) twin.id = oid_between(lo, hi, rng);
      if (bson_oid_compare(&twin.id, &d.id) > 0) std::swap(twin.id, d.id);
      twin.lu_ms = lu_base + static_cast<int64_t>(rng() % (uint64_t{hi - lo} * 1000 + 1));
      try {
        coll.insert_one(build_legacy(twin, Fields{}).get());
      } catch (const std::exception& e) {
        if (refused++ < 3) std::cerr << "the database refused the twin of a '" << kind.name << "' entry: " << e.what() << "\n";
        made[kind.name]++;
        continue;
      }
    }
    kind.apply(d, f, rng);
    mongo::Bson doc = build_legacy(d, f);
    try {
      coll.insert_one(doc.get());
    } catch (const std::exception& e) {
      // The database itself refused the document (FerretDB validates some of it): it can never
      // reach the migrator, so it is not counted as injected.
      if (refused++ < 3) std::cerr << "the database refused a '" << kind.name << "' entry: " << e.what() << "\n";
      made[kind.name]++;
      continue;
    }
    made[kind.name]++;
    // FerretDB stores invalid UTF-8 repaired: a body that comes back changed may be a good one
    // now, migrated as such, not a bad one injected. (Other fields it may store in another
    // representation; they stay bad, so only the body is compared.)
    mongo::Builder by_id;
    by_id.append("_id", d.id);
    auto stored = coll.find_one(by_id.get());
    auto sent_json = mongo::View(doc.get()).string("json");
    if (!stored || mongo::View(stored->get()).string("json") != sent_json) {
      altered++;
      continue;
    }
    written++;
    expected << hex(d.id) << '\t' << kind.reason << '\t' << kind.name << '\n';
  }
  std::cout << "bad-legacy: " << written << " bad entries of " << kinds.size() << " kinds inserted";
  if (refused) std::cout << " (" << refused << " refused by the database itself, not counted)";
  if (altered) std::cout << " (" << altered << " stored altered by the database, so valid: not counted)";
  std::cout << "\n";
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Files

struct FileWriter {
  fs::path path;
  std::ofstream out;
  int line = 0;
  explicit FileWriter(const fs::path& p) : path(p), out(p, std::ios::binary) {}
  int put(const std::string& text) {  // the line it starts on
    out << text << '\n';
    int at = ++line;
    line += static_cast<int>(std::count(text.begin(), text.end(), '\n'));
    return at;
  }
};

std::vector<std::pair<std::string, std::string>> bad_lines(const std::string& id, std::mt19937_64& rng,
                                                           corpus::Generator& gen, bool allow_huge) {
  std::string good = gen.resource("Patient", id);
  std::vector<std::pair<std::string, std::string>> v = {
      {"invalid-json", good.substr(0, 1 + rng() % (good.size() - 2))},
      {"invalid-json", "{\"resourceType\":\"Patient\",\"id\":\"" + id + "\",}"},
      {"invalid-json", "[" + good + "]"},
      {"invalid-json", "\"Patient\""},
      {"invalid-json", "null"},
      {"invalid-json", R"({"resourceType":"Patient","id":")" + id + R"(","extension":)" + deep(3000) + "}"},
      {"invalid-json", "{\"resourceType\":\"Patient\",\"id\":\"" + id + "\",\"gender\":\"\xFF\xFE\"}"},
      // A truncated line whose 300-byte excerpt ends inside a two-byte character.
      {"invalid-json", "{\"resourceType\":\"Patient\",\"id\":\"" + id + "\",\"text\":\"" + std::string(299 - 36 - id.size(), 'a') + "\xC3\xA9\xC3\xA9\xC3\xA9"},
      {"bad-field", R"({"id":")" + id + R"(","active":true})"},
      {"bad-field", R"({"resourceType":["Patient"],"id":")" + id + R"("})"},
      {"unknown-type", R"({"resourceType":"Patientx","id":")" + id + R"("})"},
      {"unknown-type", R"({"resourceType":"../../etc/passwd","id":")" + id + R"("})"},
      {"bad-field", R"({"resourceType":"Patient","active":true})"},
      {"bad-field", R"({"resourceType":"Patient","id":42})"},
      {"bad-field", R"({"resourceType":"Patient","id":"../)" + id + R"("})"},
      {"bad-field", R"({"resourceType":"Patient","id":"a/b"})"},
      {"bad-field", R"({"resourceType":"Patient","id":")" + std::string(65, 'x') + R"("})"},
      {"bad-field", R"({"resourceType":"Patient","id":""})"},
      {"bad-resource", R"({"resourceType":"Patient","id":")" + id + R"(","meta":"v1"})"},
      {"bad-resource", R"({"resourceType":"Patient","id":")" + id + R"(","contained":[{"id":"x"}]})"},
      {"bad-resource",
       R"({"resourceType":"Patient","id":")" + id +
           R"(","contained":[{"resourceType":"Organization","id":"o"},{"resourceType":"Organization","id":"o"}]})"},
  };
  if (allow_huge) {
    std::string huge = R"({"resourceType":"Patient","id":")" + id + R"(","text":{"div":")";
    huge.append(kOversized, 'x');
    v.push_back({"oversized", huge + "\"}}"});
  }
  return v;
}

int bad_files(const fs::path& dir, int bad, int good, uint64_t seed, const std::string& expected_path) {
  fs::create_directories(dir);
  std::mt19937_64 rng(seed);
  corpus::Generator gen(seed);
  std::ofstream expected(expected_path);
  int bad_written = 0, good_written = 0, serial = 0;
  auto good_resource = [&] {
    std::string type(gen.random_type());
    return gen.resource(type, "good-" + std::to_string(good_written++));
  };
  // Half the bad ones as ndjson lines, mixed with half the good resources.
  {
    FileWriter f(dir / "a-mixed.ndjson");
    const int bad_lines_wanted = bad / 2, good_here = good / 2;
    bool huge_done = false;
    int g = 0;
    while (bad_written < bad_lines_wanted || g < good_here) {
      if (g < good_here && (rng() % 2 == 0 || bad_written >= bad_lines_wanted)) {
        f.put(good_resource());
        ++g;
        continue;
      }
      auto lines = bad_lines("badline-" + std::to_string(serial++), rng, gen, !huge_done);
      const auto& [reason, text] = lines[rng() % lines.size()];
      if (reason == "oversized") huge_done = true;
      int at = f.put(text);
      expected << f.path.filename().string() << '\t' << at << '\t' << reason << '\t' << "ndjson" << '\n';
      ++bad_written;
    }
  }
  // The rest as Bundles: transaction Bundles mixing good and bad entries (one entry per line),
  // and whole files that cannot be read (truncated, of an unsupported type, not a Bundle).
  int file_no = 0;
  while (bad_written < bad || good_written < good) {
    char name[32];
    std::snprintf(name, sizeof name, "b-%04d.json", file_no++);
    FileWriter f(dir / name);
    int shape = static_cast<int>(rng() % 10);
    if (shape == 0 && bad_written < bad) {
      f.put(R"({"resourceType":"Bundle","type":"searchset","entry":[{"resource":)" + good_resource() + "}]}");
      --good_written;  // not imported: the whole file is refused
      expected << name << "\t1\tunsupported-bundle-type\tbundle-file\n";
      ++bad_written;
      continue;
    }
    if (shape == 1 && bad_written < bad) {
      std::string whole = R"({"resourceType":"Bundle","type":"transaction","entry":[{"resource":)" + good_resource();
      --good_written;
      f.put(whole.substr(0, whole.size() / 2));
      expected << name << "\t1\tinvalid-json\tbundle-file\n";
      ++bad_written;
      continue;
    }
    f.put(R"({"resourceType":"Bundle","type":"transaction","entry":[)");
    bool first = true;
    for (int i = 0; i < 20; ++i) {
      std::string sep = first ? "" : ",";
      first = false;
      bool want_bad = bad_written < bad && (good_written >= good || rng() % 2 == 0);
      if (!want_bad) {
        f.put(sep + R"({"resource":)" + good_resource() + R"(,"request":{"method":"PUT","url":"x"}})");
        continue;
      }
      std::string id = "badentry-" + std::to_string(serial++);
      std::vector<std::pair<std::string, std::string>> entries = {
          {"no-resource", R"({"request":{"method":"DELETE","url":"Patient/)" + id + R"("}})"},
          {"bad-resource", R"("not an entry")"},
          {"bad-resource", R"({"resource":[1,2]})"},
          {"bad-field", R"({"resource":{"resourceType":"Patient","id":"a b"}})"},
          {"unknown-type", R"({"resource":{"resourceType":"NoSuchType","id":")" + id + R"("}})"},
          {"bad-field", R"({"resource":{"resourceType":"Patient"}})"},
          {"bad-resource", R"({"resource":{"resourceType":"Patient","id":")" + id + R"(","meta":[]}})"},
      };
      const auto& [reason, text] = entries[rng() % entries.size()];
      int at = f.put(sep + text);
      expected << name << '\t' << at << '\t' << reason << '\t' << "bundle-entry" << '\n';
      ++bad_written;
    }
    f.put("]}");
  }
  std::ofstream(dir / "good.count") << good_written << "\n";
  std::cout << "bad-files: " << bad_written << " bad lines, Bundle entries and files, " << good_written
            << " good resources in " << file_no << " Bundle files and 1 ndjson file\n";
  return 0;
}

int good_files(const fs::path& dir, int resources, uint64_t seed) {
  fs::create_directories(dir);
  corpus::Generator gen(seed);
  std::ofstream out(dir / "resources.ndjson", std::ios::binary);
  for (int i = 0; i < resources; ++i) {
    std::string type(gen.random_type());
    out << gen.resource(type, "r" + std::to_string(i)) << '\n';
  }
  std::cout << "good-files: " << resources << " resources\n";
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Checks

std::vector<std::vector<std::string>> read_tsv(const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cols;
    std::stringstream ss(line);
    std::string c;
    while (std::getline(ss, c, '\t')) cols.push_back(c);
    if (!cols.empty()) rows.push_back(cols);
  }
  return rows;
}

int check_quarantine(const std::string& uri, const std::string& collection, const std::string& expected_path,
                     bool files) {
  mongo::ensure_driver_initialized();
  mongo::ClientPool pool(mongo::Uri::parse(uri), "chaos-tool");
  mongo::Client client = pool.acquire();
  auto q = client.collection(pool.database(), collection + "_quarantine");
  // key -> reason; a key is the _id (legacy) or "file:line" (files).
  std::map<std::string, std::string> found;
  int duplicates = 0;
  mongo::Bson all;
  auto c = q.find(all.get());
  while (const bson_t* d = c.next()) {
    mongo::View v(d);
    std::string key;
    if (files) {
      if (!v.string("file")) continue;  // a record of another kind
      key = fs::path(std::string(*v.string("file"))).filename().string() + ":" +
            std::to_string(v.integer("line").value_or(-1));
    } else {
      auto id = v.oid("_id");
      key = id ? hex(*id) : mongo::to_json(d);
    }
    if (!found.emplace(key, std::string(v.string("reason").value_or("?"))).second) ++duplicates;
  }
  int missing = 0, wrong = 0, right = 0;
  std::map<std::string, int> problems;  // kind -> count, for the message
  std::set<std::string> expected_keys;
  for (const auto& row : read_tsv(expected_path)) {
    std::string key = files ? row[0] + ":" + row[1] : row[0];
    const std::string& reason = files ? row[2] : row[1];
    const std::string& kind = files ? row[3] : row[2];
    expected_keys.insert(key);
    auto it = found.find(key);
    if (it == found.end()) {
      ++missing;
      problems["missing " + kind + " (" + reason + ")"]++;
    } else if (it->second != reason) {
      ++wrong;
      problems["reason " + it->second + " for " + kind + " (expected " + reason + ")"]++;
    } else {
      ++right;
    }
  }
  int unexpected = 0;
  for (const auto& [key, reason] : found)
    if (!expected_keys.count(key)) {
      ++unexpected;
      problems["unexpected record " + key + " (" + reason + ")"]++;
    }
  std::cout << "quarantine: " << expected_keys.size() << " expected, " << right << " with the right reason, "
            << missing << " missing, " << wrong << " with another reason, " << unexpected << " unexpected, "
            << duplicates << " duplicate records\n";
  int shown = 0;
  for (const auto& [what, n] : problems)
    if (shown++ < 20) std::cout << "  " << n << " x " << what << "\n";
  return missing == 0 && wrong == 0 && unexpected == 0 && duplicates == 0 ? 0 : 1;
}

int check_import(const std::string& uri, const std::string& collection, int resources) {
  mongo::ensure_driver_initialized();
  mongo::ClientPool pool(mongo::Uri::parse(uri), "chaos-tool");
  mongo::Client client = pool.acquire();
  auto coll = client.collection(pool.database(), collection);
  std::map<std::string, int> versions;  // type/res_id -> entries
  std::map<std::string, bool> container_cur;
  std::vector<std::pair<std::string, bool>> contained;  // container _id, cur
  int bad = 0, entries = 0;
  mongo::Builder f;
  f.document("type", [](mongo::Builder& e) { e.append("$exists", true); });
  auto c = coll.find(f.get());
  while (const bson_t* d = c.next()) {
    ++entries;
    schema::Entry e;
    try {
      e = schema::decode_entry(d);
    } catch (const std::exception& ex) {
      if (bad++ < 5) std::cout << "  unreadable entry: " << ex.what() << "\n";
      continue;
    }
    if (e.cnt) {
      contained.emplace_back(hex(*e.container), e.cur);
      continue;
    }
    versions[e.type + "/" + e.res_id]++;
    container_cur[e.id_string()] = e.cur;
    if (e.v != "1" || !e.cur || e.change != schema::Change::kCreated) {
      if (bad++ < 5) std::cout << "  " << e.type << "/" << e.res_id << " is v" << e.v << " cur " << e.cur << "\n";
    }
  }
  int duplicated = 0, orphans = 0;
  for (const auto& [key, n] : versions)
    if (n != 1) {
      duplicated += n - 1;
      if (duplicated <= 5) std::cout << "  " << key << " has " << n << " entries\n";
    }
  for (const auto& [container, cur] : contained) {
    auto it = container_cur.find(container);
    if (it == container_cur.end() || it->second != cur) ++orphans;
  }
  int lost = resources - static_cast<int>(versions.size());
  std::cout << "import: " << versions.size() << " of " << resources << " resources, " << contained.size()
            << " contained entries, " << entries << " entries; " << std::max(0, lost) << " lost, " << duplicated
            << " duplicated, " << bad + orphans << " wrong\n";
  return lost == 0 && duplicated == 0 && bad == 0 && orphans == 0 ? 0 : 1;
}

int64_t count_entries(const std::string& uri, const std::string& collection) {
  mongo::ensure_driver_initialized();
  mongo::ClientPool pool(mongo::Uri::parse(uri), "chaos-tool");
  mongo::Client client = pool.acquire();
  auto coll = client.collection(pool.database(), collection);
  mongo::Builder f;
  f.document("type", [](mongo::Builder& e) { e.append("$exists", true); });
  return coll.count(f.get());
}

// ---------------------------------------------------------------------------------------------
// Hostile requests

struct Answer {
  int status = 0;  // 0: no answer (connection closed or refused)
  std::string body;
};

// One request over a fresh connection (raw bytes: most of these are not valid HTTP).
Answer send_raw(const std::string& host, int port, const std::string& request) {
  Answer a;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return a;
  timeval tv{30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return a;
  }
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer (413, 431) and close before reading it all
    sent += static_cast<size_t>(n);
  }
  // No shutdown(SHUT_WR): httplib takes a half-closed connection for a gone client and may not answer.
  std::string response;
  char buf[65536];
  // Until the answer is complete: a server that refused the request line or headers keeps the
  // connection open for the next request (it never read the Connection: close).
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    response.append(buf, static_cast<size_t>(n));
    auto head_end = response.find("\r\n\r\n");
    if (head_end == std::string::npos) continue;
    std::string head = response.substr(0, head_end);
    std::transform(head.begin(), head.end(), head.begin(), [](unsigned char c) { return std::tolower(c); });
    auto cl = head.find("\r\ncontent-length:");
    if (cl != std::string::npos &&
        response.size() - head_end - 4 >= std::stoul(head.substr(cl + 17)))
      break;
  }
  close(fd);
  if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12) return a;
  a.status = std::atoi(response.c_str() + 9);
  auto end = response.find("\r\n\r\n");
  if (end != std::string::npos) a.body = response.substr(end + 4);
  return a;
}

std::string http(const std::string& method, const std::string& target, const std::string& body,
                 const std::vector<std::string>& headers) {
  std::string r = method + " " + target + " HTTP/1.1\r\nHost: chaos\r\nConnection: close\r\n";
  for (const auto& h : headers) r += h + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT") r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  return r + "\r\n" + body;
}

struct Hostile {
  std::string kind;
  std::function<std::string(std::mt19937_64&, int)> make;
};

std::vector<Hostile> hostile_kinds(corpus::Generator& gen) {
  const std::string ct = "Content-Type: application/fhir+json";
  std::string patient = gen.resource("Patient", "p1");
  std::vector<Hostile> h;
  auto post = [&](std::string kind, std::function<std::string(std::mt19937_64&, int)> body_of) {
    h.push_back({kind, [ct, body_of](std::mt19937_64& rng, int n) { return http("POST", "/Patient", body_of(rng, n), {ct}); }});
  };
  post("bad-json:truncated", [patient](std::mt19937_64& rng, int) { return patient.substr(0, 1 + rng() % (patient.size() - 2)); });
  post("bad-json:garbage", [](std::mt19937_64& rng, int) {
    std::string s;
    for (int i = 0; i < 64; ++i) s += static_cast<char>(rng() % 256);
    return s;
  });
  post("bad-json:array", [patient](std::mt19937_64&, int) { return "[" + patient + "]"; });
  post("bad-json:empty", [](std::mt19937_64&, int) { return std::string(); });
  post("bad-json:deep", [](std::mt19937_64&, int) { return R"({"resourceType":"Patient","extension":)" + deep(20000) + "}"; });
  post("bad-json:invalid-utf8", [](std::mt19937_64&, int) { return std::string("{\"resourceType\":\"Patient\",\"gender\":\"\xC3\x28\"}"); });
  post("body:other-type", [](std::mt19937_64&, int) { return std::string(R"({"resourceType":"Observation","status":"final"})"); });
  post("body:no-resourceType", [](std::mt19937_64&, int) { return std::string(R"({"active":true})"); });
  post("body:meta-not-object", [](std::mt19937_64&, int) { return std::string(R"({"resourceType":"Patient","meta":7})"); });
  post("body:contained-without-id", [](std::mt19937_64&, int) {
    return std::string(R"({"resourceType":"Patient","contained":[{"resourceType":"Organization"}]})");
  });
  for (const char* type : {"text/plain", "application/xml", "application/fhir+xml", "multipart/form-data; boundary=x",
                           "application/x-www-form-urlencoded"})
    h.push_back({std::string("content-type:") + type, [patient, type](std::mt19937_64&, int) {
                   return http("POST", "/Patient", patient, {std::string("Content-Type: ") + type});
                 }});
  for (const char* id : {"..%2F..%2Fetc%2Fpasswd", "a%20b", "%00", "a%2Fb", "x%27%3B%20drop", "%C3%28",
                         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "%24where", "a_b"}) {
    h.push_back({std::string("put-id:") + id, [ct, patient, id](std::mt19937_64&, int) {
                   return http("PUT", std::string("/Patient/") + id, patient, {ct});
                 }});
    h.push_back({std::string("delete-id:") + id,
                 [id](std::mt19937_64&, int) { return http("DELETE", std::string("/Patient/") + id, "", {}); }});
    h.push_back({std::string("read-id:") + id,
                 [id](std::mt19937_64&, int) { return http("GET", std::string("/Patient/") + id, "", {}); }});
  }
  h.push_back({"path:deep", [](std::mt19937_64&, int) { return http("GET", "/Patient/a/b/c/d/e", "", {}); }});
  h.push_back({"path:traversal", [](std::mt19937_64&, int) { return http("GET", "/../../etc/passwd", "", {}); }});
  h.push_back({"type:unknown", [ct, patient](std::mt19937_64&, int) { return http("POST", "/Patientx", patient, {ct}); }});
  h.push_back({"put:id-mismatch", [ct, patient](std::mt19937_64&, int) { return http("PUT", "/Patient/p2", patient, {ct}); }});
  h.push_back({"put:no-id", [ct](std::mt19937_64&, int) {
                 return http("PUT", "/Patient/p3", R"({"resourceType":"Patient","active":true})", {ct});
               }});
  h.push_back({"if-match:malformed", [ct, patient](std::mt19937_64&, int) {
                 return http("PUT", "/Patient/p1", patient, {ct, "If-Match: not-an-etag"});
               }});
  // Answered at once since 2026-12-03 (before, cpp-httplib waited 60 s for 2^64-1 bytes of body).
  for (const char* length : {"-1", "abc", "1x"})
    h.push_back({std::string("content-length:") + length, [ct, patient, length](std::mt19937_64&, int) {
                   return "PUT /Patient/p1 HTTP/1.1\r\nHost: chaos\r\nConnection: close\r\n" + ct +
                          "\r\nContent-Length: " + length + "\r\n\r\n" + patient;
                 }});
  h.push_back({"method:patch", [ct](std::mt19937_64&, int) { return http("PATCH", "/Patient/p1", "[]", {ct}); }});
  h.push_back({"method:delete-type", [](std::mt19937_64&, int) { return http("DELETE", "/Patient", "", {}); }});
  h.push_back({"method:post-instance", [ct, patient](std::mt19937_64&, int) { return http("POST", "/Patient/p1", patient, {ct}); }});
  h.push_back({"http:garbage-request-line", [](std::mt19937_64&, int) { return std::string("\x16\x03\x01 garbage\r\n\r\n"); }});
  h.push_back({"http:huge-header", [](std::mt19937_64&, int) {
                 return http("GET", "/Patient/p1", "", {"X-Big: " + std::string(64 * 1024, 'h')});
               }});
  h.push_back({"http:huge-uri", [](std::mt19937_64&, int) {
                 return http("GET", "/Patient?name=" + std::string(64 * 1024, 'n'), "", {});
               }});
  // Above the server's 15 MiB limit once in 20 rounds (they cost 16 MiB each), 2 MiB of unclosed
  // JSON otherwise.
  h.push_back({"body:huge", [ct](std::mt19937_64&, int n) {
                 size_t size = n % 20 == 0 ? size_t{16} << 20 : size_t{2} << 20;
                 std::string big = R"({"resourceType":"Patient","text":{"div":")" + std::string(size, 'x');
                 if (n % 20 == 0) big += "\"}}";
                 return http("POST", "/Patient", big, {ct});
               }});
  auto search = [&](std::string kind, std::string query) {
    h.push_back({"search:" + kind, [query](std::mt19937_64&, int) { return http("GET", query, "", {}); }});
  };
  search("date-garbage", "/Patient?birthdate=notadate");
  search("date-month-13", "/Patient?birthdate=2020-13-01");
  search("date-bad-prefix", "/Patient?birthdate=zz2020");
  search("lastUpdated-garbage", "/Patient?_lastUpdated=yesterday");
  search("count-negative", "/Patient?_count=-1");
  search("count-text", "/Patient?_count=ten");
  search("count-huge", "/Patient?_count=99999999999999999999999");
  search("offset-negative", "/Patient?_offset=-3");
  search("number-garbage", "/RiskAssessment?probability=abc");
  search("quantity-garbage", "/Observation?value-quantity=lots");
  search("token-empty", "/Patient?identifier=|");
  search("modifier-unknown", "/Patient?name:sounds-like=x");
  search("sort-unknown", "/Patient?_sort=nosuchparam");
  search("total-bad", "/Patient?_total=maybe");
  search("contained-bad", "/Patient?_contained=sometimes");
  search("chained", "/Observation?subject.name=x");
  search("empty-value", "/Patient?name=");
  search("history-count", "/Patient/_history?_count=x");
  search("history-since", "/Patient/_history?_since=never");
  search("history-param", "/Patient/_history?name=x");
  return h;
}

int hostile(const std::string& url, const std::string& uri, const std::string& collection, int count,
            uint64_t seed) {
  // http://127.0.0.1:PORT
  auto colon = url.rfind(':');
  std::string host = url.substr(url.find("//") + 2, colon - url.find("//") - 2);
  int port = std::stoi(url.substr(colon + 1));
  const int64_t before = count_entries(uri, collection);
  corpus::Generator gen(seed);
  std::mt19937_64 rng(seed);
  std::vector<Hostile> kinds = hostile_kinds(gen);
  std::map<std::string, std::map<std::string, int>> bad;  // kind -> outcome -> count
  std::map<int, int> statuses;
  std::map<std::string, double> slowest;  // kind -> slowest answer, ms
  int ok = 0, failed = 0;
  for (int n = 0; n < count; ++n) {
    const Hostile& k = kinds[static_cast<size_t>(n) % kinds.size()];
    auto t0 = std::chrono::steady_clock::now();
    Answer a = send_raw(host, port, k.make(rng, n / static_cast<int>(kinds.size())));
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    slowest[k.kind] = std::max(slowest[k.kind], ms);
    statuses[a.status]++;
    bool outcome = a.body.find("\"OperationOutcome\"") != std::string::npos;
    if (a.status >= 400 && a.status < 500 && outcome) {
      ++ok;
      continue;
    }
    ++failed;
    std::string what = a.status == 0 ? "no answer" : "HTTP " + std::to_string(a.status) + (outcome ? "" : " without OperationOutcome");
    bad[k.kind][what]++;
  }
  const int64_t after = count_entries(uri, collection);
  std::cout << "hostile: " << count << " requests of " << kinds.size() << " kinds, " << ok
            << " answered 4xx with an OperationOutcome, " << failed << " not; entries " << before << " -> " << after
            << "; statuses:";
  for (const auto& [s, n] : statuses) std::cout << " " << s << "x" << n;
  std::cout << "\n";
  for (const auto& [kind, outcomes] : bad)
    for (const auto& [what, n] : outcomes) std::cout << "  " << kind << ": " << n << " x " << what << "\n";
  std::vector<std::pair<double, std::string>> slow;
  for (const auto& [kind, ms] : slowest) slow.emplace_back(ms, kind);
  std::sort(slow.rbegin(), slow.rend());
  std::cout << "  slowest answers:";
  for (size_t i = 0; i < std::min<size_t>(3, slow.size()); ++i)
    std::cout << " " << slow[i].second << " " << static_cast<int>(slow[i].first) << " ms" << (i + 1 < 3 ? "," : "");
  std::cout << "\n";
  return failed == 0 && before == after ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fault campaign helper (bench/chaos/run.sh)"};
  app.require_subcommand(1);
  std::string uri, collection = "vonkentries", expected, dir, url;
  int count = 1000, good = 1000, resources = 1000;
  uint64_t seed = 1;
  bool legacy = false, files = false;
  auto common = [&](CLI::App* c) {
    c->add_option("--seed", seed);
    c->add_option("--collection", collection);
  };
  auto* c1 = app.add_subcommand("bad-legacy");
  c1->add_option("--uri", uri)->required();
  c1->add_option("--count", count);
  c1->add_option("--expected", expected)->required();
  common(c1);
  auto* c2 = app.add_subcommand("bad-files");
  c2->add_option("--dir", dir)->required();
  c2->add_option("--bad", count);
  c2->add_option("--good", good);
  c2->add_option("--expected", expected)->required();
  common(c2);
  auto* c3 = app.add_subcommand("good-files");
  c3->add_option("--dir", dir)->required();
  c3->add_option("--resources", resources);
  common(c3);
  auto* c4 = app.add_subcommand("check-quarantine");
  c4->add_option("--uri", uri)->required();
  c4->add_option("--expected", expected)->required();
  c4->add_flag("--legacy", legacy);
  c4->add_flag("--files", files);
  common(c4);
  auto* c5 = app.add_subcommand("check-import");
  c5->add_option("--uri", uri)->required();
  c5->add_option("--resources", resources)->required();
  common(c5);
  auto* c6 = app.add_subcommand("count");
  c6->add_option("--uri", uri)->required();
  common(c6);
  auto* c7 = app.add_subcommand("hostile");
  c7->add_option("--url", url)->required();
  c7->add_option("--uri", uri)->required();
  c7->add_option("--count", count);
  common(c7);
  CLI11_PARSE(app, argc, argv);
  try {
    if (*c1) return bad_legacy(uri, collection, count, seed, expected);
    if (*c2) return bad_files(dir, count, good, seed, expected);
    if (*c3) return good_files(dir, resources, seed);
    if (*c4) {
      if (legacy == files) throw std::invalid_argument("say --legacy or --files");
      return check_quarantine(uri, collection, expected, files);
    }
    if (*c5) return check_import(uri, collection, resources);
    if (*c6) {
      std::cout << count_entries(uri, collection) << "\n";
      return 0;
    }
    if (*c7) return hostile(url, uri, collection, count, seed);
  } catch (const std::exception& e) {
    std::cerr << "chaos_tool: " << e.what() << "\n";
    return 1;
  }
  return 2;
}
