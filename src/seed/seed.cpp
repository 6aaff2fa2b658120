#include "seed/seed.h"

#include <fmt/format.h>

#include <ctime>
#include <random>
#include <vector>

#include "mongo/collection.h"
#include "schema/entry.h"
#include "schema/layout.h"

namespace fhirshift::seed {
namespace {

std::string iso(int64_t ms) {
  std::time_t s = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&s, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+00:00", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
}

const char* const kFamilies[] = {"Müller", "Smith", "García", "Nguyen", "O'Brien", "Jansen", "Kowalski"};
const char* const kGiven[] = {"Anna", "José", "Li", "Fatima", "Peter", "Zoë", "Ole"};

// The contained Medication, both inside its container's body and as its own `cnt` entry.
constexpr const char* kContainedMedication =
    R"({{"resourceType":"Medication","id":"med1","code":{{"coding":[{{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"{}"}}]}}}})";

}  // namespace

std::string contained_medication(uint64_t med_code) { return fmt::format(kContainedMedication, med_code); }

std::string resource_body(std::mt19937_64& rng, const std::string& type, const std::string& id,
                          const std::string& v, int64_t lu_ms, int version, uint64_t med_code) {
  std::string meta = fmt::format(R"("meta":{{"versionId":"{}","lastUpdated":"{}"}})", v, iso(lu_ms));
  auto pick = [&](auto& arr) { return arr[rng() % std::size(arr)]; };
  int patient = static_cast<int>(rng() % 1000);
  if (type == "Patient")
    return fmt::format(
        R"({{"resourceType":"Patient","id":"{}",{},"identifier":[{{"system":"urn:oid:1.2.36.146.595.217.0.1","value":"MRN{}"}}],"active":true,"name":[{{"family":"{}","given":["{}"]}}],"gender":"{}","birthDate":"19{:02}-0{}-1{}","telecom":[{{"system":"phone","value":"+31 20 555 {:04}"}}]}})",
        id, meta, rng() % 1000000, pick(kFamilies), pick(kGiven), rng() % 2 ? "female" : "male",
        rng() % 100, 1 + rng() % 9, rng() % 10, rng() % 10000);
  if (type == "Observation")
    return fmt::format(
        R"({{"resourceType":"Observation","id":"{}",{},"status":"final","code":{{"coding":[{{"system":"http://loinc.org","code":"29463-7","display":"Body Weight"}}],"text":"Weight"}},"subject":{{"reference":"Patient/p{}"}},"effectiveDateTime":"2023-0{}-1{}T0{}:30:00+01:00","valueQuantity":{{"value":{}.{}0,"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"}}}})",
        id, meta, patient, 1 + rng() % 9, rng() % 10, rng() % 10, 40 + rng() % 80, rng() % 10);
  if (type == "Encounter")
    return fmt::format(
        R"({{"resourceType":"Encounter","id":"{}",{},"status":"{}","class":{{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"}},"subject":{{"reference":"Patient/p{}"}},"period":{{"start":"2023-05-0{}T08:00:00Z"{}}}}})",
        id, meta, version > 1 ? "finished" : "in-progress", patient, 1 + rng() % 9,
        version > 1 ? R"(,"end":"2023-05-09T17:00:00Z")" : "");
  if (type == "Condition")
    return fmt::format(
        R"({{"resourceType":"Condition","id":"{}",{},"clinicalStatus":{{"coding":[{{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"}}]}},"code":{{"coding":[{{"system":"http://snomed.info/sct","code":"{}"}}],"text":"Condition {}"}},"subject":{{"reference":"Patient/p{}"}},"onsetDateTime":"20{:02}-0{}"}})",
        id, meta, 100000 + rng() % 900000, rng() % 100, patient, rng() % 24, 1 + rng() % 9);
  if (type == "Procedure")
    return fmt::format(
        R"({{"resourceType":"Procedure","id":"{}",{},"status":"completed","code":{{"coding":[{{"system":"http://snomed.info/sct","code":"80146002"}}]}},"subject":{{"reference":"Patient/p{}"}},"performedPeriod":{{"start":"2022-0{}-01","end":"2022-0{}-02"}}}})",
        id, meta, patient, 1 + rng() % 8, 1 + rng() % 8);
  if (type == "Practitioner")
    return fmt::format(
        R"({{"resourceType":"Practitioner","id":"{}",{},"identifier":[{{"system":"http://hl7.org/fhir/sid/us-npi","value":"{}"}}],"name":[{{"family":"{}","given":["{}"],"prefix":["Dr."]}}]}})",
        id, meta, 1000000000 + rng() % 899999999, pick(kFamilies), pick(kGiven));
  if (type == "Organization")
    return fmt::format(
        R"({{"resourceType":"Organization","id":"{}",{},"active":true,"name":"St. {} Hospital","address":[{{"line":["{} Main Street"],"city":"Amsterdam","country":"NL"}}]}})",
        id, meta, pick(kGiven), rng() % 300);
  return fmt::format(
      R"({{"resourceType":"MedicationRequest","id":"{}",{},"contained":[{}],"status":"active","intent":"order","medicationReference":{{"reference":"#med1"}},"subject":{{"reference":"Patient/p{}"}},"authoredOn":"2023-0{}-1{}","dosageInstruction":[{{"text":"1.50 mg daily"}}]}})",
      id, meta, contained_medication(med_code), patient, 1 + rng() % 9, rng() % 10);
}

void prepare_legacy_store(mongo::Collection& coll) {
  mongo::Builder f;
  f.append("_id", schema::kSystemDocumentId);
  mongo::Bson sys = schema::legacy_system_document();
  mongo::BulkWriter w = coll.bulk(true);
  w.replace_one(f.extract().get(), sys.get(), true);
  w.execute();
  mongo::Builder idx;
  idx.array("indexes", [](mongo::ArrayBuilder& a) {
    a.document([](mongo::Builder& i) {
      i.document("key", [](mongo::Builder& k) {
        k.append("im", int32_t{1}).append("type", int32_t{1}).append("res_id", int32_t{1}).append("cur", int32_t{1});
      });
      i.append("name", "im_type_res_id_cur");
    });
  });
  mongo::Bson idx_doc = idx.extract();
  bson_iter_t it;
  bson_iter_init_find(&it, idx_doc.get(), "indexes");
  uint32_t len;
  const uint8_t* data;
  bson_iter_array(&it, &len, &data);
  bson_t arr;
  bson_init_static(&arr, data, len);
  coll.create_indexes(&arr);
}

SeedReport seed_legacy_store(mongo::ClientPool& pool, const SeedOptions& options,
                             const std::function<void(int64_t)>& on_progress) {
  std::mt19937_64 rng(options.seed);
  mongo::Client client = pool.acquire();
  mongo::Collection coll = client.collection(pool.database(), options.collection);
  SeedReport report;
  if (options.write_system_document) prepare_legacy_store(coll);

  // Two passes over the same decision sequence: the first only learns which entries end up as
  // history, so the second writes every entry in its final state with plain inserts. (Flipping
  // `cur` afterwards would need an update per version, which is slow on servers that cannot use
  // an index for it, and the old server's history is what matters here, not how it got there.)
  struct Shape {
    std::string im, type, id;
    int version = 0;
    bool deleted = false;
    int64_t last = -1;  // ordinal of the current entry
    bool has_contained = false;
  };
  auto run = [&](std::vector<bool>& history, bool write) {
    std::mt19937_64 rng(options.seed);  // decisions: identical in both passes
    std::mt19937_64 content(options.seed ^ 0x9e3779b97f4a7c15ULL);  // bodies: second pass only
    std::vector<Shape> resources;
    std::vector<mongo::Bson> pending;
    int64_t lu = options.start_ms;
    uint32_t counter = static_cast<uint32_t>(options.seed * 7919u);
    int64_t ordinal = 0;
    auto flush = [&] {
      if (pending.empty()) return;
      mongo::BulkWriter bulk = coll.bulk(false);
      for (const auto& d : pending) bulk.insert(d.get());
      bulk.execute();
      pending.clear();
      if (on_progress) on_progress(report.entries);
    };
    auto next_oid = [&](int64_t ms) {
      uint8_t b[12];
      uint32_t secs = static_cast<uint32_t>(ms / 1000);
      b[0] = secs >> 24; b[1] = secs >> 16; b[2] = secs >> 8; b[3] = secs;
      uint64_t r = options.seed;
      for (int i = 0; i < 5; ++i) b[4 + i] = static_cast<uint8_t>(r >> (8 * i));
      ++counter;
      b[9] = counter >> 16; b[10] = counter >> 8; b[11] = counter;
      bson_oid_t oid;
      bson_oid_init_from_data(&oid, b);
      return oid;
    };
    auto emit = [&](schema::Entry& e) {
      if (write) {
        e.cur = !history[ordinal];
        mongo::Bson doc = schema::encode_legacy(e);
        if (report.entries % 10 == 3) {  // a legacy search field the migrator must ignore
          mongo::Builder b(doc.get());
          b.document("ix", [&](mongo::Builder& ix) { ix.append("legacy", e.res_id); });
        }
        pending.push_back(std::move(doc));
        report.entries++;
        if (static_cast<int>(pending.size()) >= options.batch) flush();
      }
      ordinal++;
    };
    int64_t written = 0;
    while (written < options.entries) {
      lu += 1 + static_cast<int64_t>(rng() % 50);
      uint64_t dice = rng() % 100;
      Shape* r = nullptr;
      // The last slot of the budget never goes to a MedicationRequest: its contained entry would
      // not fit, and `entries` is exact.
      bool last_slot = options.entries - written < 2;
      if (dice < 60 || resources.empty() || last_slot) {
        resources.push_back({});
        r = &resources.back();
        r->type = last_slot ? "Patient" : kResourceTypes[rng() % std::size(kResourceTypes)];
        r->im = rng() % 50 == 0 ? schema::kInfoModelStu3 : schema::kInfoModelR4;
        r->id = fmt::format("{}{}", static_cast<char>(std::tolower(r->type[0])), resources.size());
        if (write) report.resources++;
      } else {
        r = &resources[rng() % resources.size()];
        if (!write) {
          history[r->last] = true;
          if (r->has_contained) history[r->last + 1] = true;
        }
      }
      bool tombstone = r->version > 0 && !r->deleted && dice >= 94;
      r->version++;
      schema::Entry e;
      e.id = next_oid(lu);
      e.im = r->im;
      e.type = r->type;
      e.res_id = r->id;
      e.v = std::to_string(r->version);
      e.lu_ms = lu;
      e.change = r->version == 1 || r->deleted ? schema::Change::kCreated
                                               : (tombstone ? schema::Change::kDeleted : schema::Change::kUpdated);
      r->deleted = tombstone;
      r->last = ordinal;
      r->has_contained = !tombstone && r->type == "MedicationRequest";
      uint64_t med_code = 100000 + content() % 100000;
      if (write && !tombstone) e.json = resource_body(content, r->type, r->id, e.v, lu, r->version, med_code);
      if (write && tombstone) report.tombstones++;
      emit(e);
      written++;
      if (r->has_contained) {
        schema::Entry c = e;
        c.id = next_oid(lu);
        c.type = "Medication";
        c.res_id = "med1";
        c.cnt = true;
        c.container = e.id;
        c.json = contained_medication(med_code);
        if (write) report.contained++;
        emit(c);
        written++;
      }
    }
    flush();
  };
  std::vector<bool> history(static_cast<size_t>(options.entries), false);
  run(history, false);
  run(history, true);
  return report;
}

}  // namespace fhirshift::seed
