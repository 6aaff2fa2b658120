#include "corpus/generator.h"

#include <array>
#include <cstdio>
#include <map>
#include <stdexcept>
#include <utility>

namespace fhirshift::corpus {
namespace {

// splitmix64: tiny, fast and fully specified, so that a seed yields the same corpus everywhere
// (std::uniform_int_distribution is implementation-defined).
uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint64_t fnv1a(std::string_view s, uint64_t h = 0xcbf29ce484222325ULL) {
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() { return splitmix(s_); }
  int below(int n) { return static_cast<int>(next() % static_cast<uint64_t>(n)); }
  int between(int lo, int hi) { return lo + below(hi - lo + 1); }
  bool pct(int p) { return below(100) < p; }
  template <class T, size_t N>
  const T& pick(const std::array<T, N>& a) {
    return a[static_cast<size_t>(below(static_cast<int>(N)))];
  }

 private:
  uint64_t s_;
};

// A minimal streaming JSON writer: numbers are written as their literal text, so decimals such as
// "1.50" keep their exact form.
class JsonWriter {
 public:
  JsonWriter() { first_.push_back(true); }
  void key(std::string_view k) {
    separate();
    quote(k);
    out_ += ':';
    after_key_ = true;
  }
  void string(std::string_view v) {
    prefix();
    quote(v);
  }
  void raw(std::string_view v) {
    prefix();
    out_ += v;
  }
  template <class F>
  void object(F&& body) {
    open('{');
    body();
    close('}');
  }
  template <class F>
  void array(F&& body) {
    open('[');
    body();
    close(']');
  }
  std::string take() { return std::move(out_); }

 private:
  void separate() {
    if (!first_.back()) out_ += ',';
    first_.back() = false;
  }
  void prefix() {
    if (after_key_)
      after_key_ = false;
    else
      separate();
  }
  void open(char c) {
    prefix();
    out_ += c;
    first_.push_back(true);
  }
  void close(char c) {
    out_ += c;
    first_.pop_back();
  }
  void quote(std::string_view s) {
    out_ += '"';
    for (char ch : s) {
      auto c = static_cast<unsigned char>(ch);
      if (c == '"') {
        out_ += "\\\"";
      } else if (c == '\\') {
        out_ += "\\\\";
      } else if (c == '\n') {
        out_ += "\\n";
      } else if (c < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out_ += buf;
      } else {
        out_ += ch;
      }
    }
    out_ += '"';
  }

  std::string out_;
  std::vector<bool> first_;
  bool after_key_ = false;
};

struct Code {
  const char* system;
  const char* code;
  const char* display;
};

constexpr const char* kLoinc = "http://loinc.org";
constexpr const char* kSnomed = "http://snomed.info/sct";
constexpr const char* kRxNorm = "http://www.nlm.nih.gov/research/umls/rxnorm";
constexpr const char* kUcum = "http://unitsofmeasure.org";

struct Vital {
  Code code;
  const char* unit;
  const char* ucum;
  int lo, hi, decimals;
};

const std::array<Vital, 9> kVitals{{
    {{kLoinc, "8867-4", "Heart rate"}, "beats/minute", "/min", 45, 140, 0},
    {{kLoinc, "29463-7", "Body weight"}, "kg", "kg", 3, 140, 1},
    {{kLoinc, "8302-2", "Body height"}, "cm", "cm", 50, 200, 1},
    {{kLoinc, "8310-5", "Body temperature"}, "Cel", "Cel", 35, 41, 2},
    {{kLoinc, "2339-0", "Glucose [Mass/volume] in Blood"}, "mg/dL", "mg/dL", 60, 300, 0},
    {{kLoinc, "718-7", "Hemoglobin [Mass/volume] in Blood"}, "g/dL", "g/dL", 8, 18, 1},
    {{kLoinc, "2093-3", "Cholesterol [Mass/volume] in Serum or Plasma"},
     "mg/dL",
     "mg/dL",
     120,
     300,
     0},
    {{kLoinc, "39156-5", "Body mass index (BMI) [Ratio]"}, "kg/m2", "kg/m2", 15, 45, 2},
    {{kLoinc, "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"},
     "%",
     "%",
     85,
     100,
     0},
}};
const std::array<Code, 4> kCodedObs{{
    {kLoinc, "72166-2", "Tobacco smoking status"},
    {kLoinc, "882-1", "ABO and Rh group [Type] in Blood"},
    {kLoinc, "5778-6", "Color of Urine"},
    {kLoinc, "94500-6", "SARS-CoV-2 (COVID-19) RNA [Presence] in Respiratory specimen by NAA"},
}};
const std::array<Code, 6> kObsAnswers{{
    {kSnomed, "266919005", "Never smoker"},
    {kSnomed, "8517006", "Ex-smoker"},
    {kSnomed, "260385009", "Negative"},
    {kSnomed, "10828004", "Positive"},
    {kSnomed, "371244009", "Yellow color"},
    {kSnomed, "278149003", "Blood group A Rh(D) positive"},
}};
const std::array<Code, 10> kConditions{{
    {kSnomed, "44054006", "Diabetes mellitus type 2"},
    {kSnomed, "38341003", "Hypertensive disorder"},
    {kSnomed, "195967001", "Asthma"},
    {kSnomed, "840539006", "Disease caused by severe acute respiratory syndrome coronavirus 2"},
    {kSnomed, "13645005", "Chronic obstructive lung disease"},
    {kSnomed, "35489007", "Depressive disorder"},
    {kSnomed, "10509002", "Acute bronchitis"},
    {kSnomed, "444814009", "Viral sinusitis"},
    {kSnomed, "162864005", "Body mass index 30+ - obesity"},
    {kSnomed, "72892002", "Normal pregnancy"},
}};
const std::array<Code, 6> kIcd10{{
    {"http://hl7.org/fhir/sid/icd-10-cm", "E11.9",
     "Type 2 diabetes mellitus without complications"},
    {"http://hl7.org/fhir/sid/icd-10-cm", "I10", "Essential (primary) hypertension"},
    {"http://hl7.org/fhir/sid/icd-10-cm", "J45.909", "Unspecified asthma, uncomplicated"},
    {"http://hl7.org/fhir/sid/icd-10-cm", "U07.1", "COVID-19"},
    {"http://hl7.org/fhir/sid/icd-10-cm", "J44.9", "Chronic obstructive pulmonary disease"},
    {"http://hl7.org/fhir/sid/icd-10-cm", "F32.9", "Major depressive disorder, single episode"},
}};
const std::array<Code, 8> kMedications{{
    {kRxNorm, "197361", "Amlodipine 5 MG Oral Tablet"},
    {kRxNorm, "860975", "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet"},
    {kRxNorm, "314076", "Lisinopril 10 MG Oral Tablet"},
    {kRxNorm, "313782", "Acetaminophen 325 MG Oral Tablet"},
    {kRxNorm, "308136", "Amoxicillin 500 MG Oral Capsule"},
    {kRxNorm, "895994", "120 ACTUAT Fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler"},
    {kRxNorm, "617314", "Atorvastatin 10 MG Oral Tablet"},
    {kRxNorm, "1049221", "Acetaminophen 325 MG / Oxycodone Hydrochloride 5 MG Oral Tablet"},
}};
const std::array<Code, 6> kVaccines{{
    {"http://hl7.org/fhir/sid/cvx", "140", "Influenza, seasonal, injectable, preservative free"},
    {"http://hl7.org/fhir/sid/cvx", "208", "SARS-COV-2 (COVID-19) vaccine, mRNA, 30 mcg/0.3mL"},
    {"http://hl7.org/fhir/sid/cvx", "08", "Hep B, adolescent or pediatric"},
    {"http://hl7.org/fhir/sid/cvx", "03", "MMR"},
    {"http://hl7.org/fhir/sid/cvx", "115", "Tdap"},
    {"http://hl7.org/fhir/sid/cvx", "133", "Pneumococcal conjugate PCV 13"},
}};
const std::array<Code, 6> kAllergens{{
    {kSnomed, "227493005", "Cashew nuts"},
    {kSnomed, "91935009", "Allergy to peanuts"},
    {kRxNorm, "7980", "Penicillin G"},
    {kSnomed, "300916003", "Latex allergy"},
    {kSnomed, "418689008", "Allergy to grass pollen"},
    {kSnomed, "232347008", "Dander (animal) allergy"},
}};
const std::array<Code, 8> kProcedures{{
    {kSnomed, "73761001", "Colonoscopy"},
    {kSnomed, "80146002", "Appendectomy"},
    {kSnomed, "387713003", "Surgical procedure"},
    {kSnomed, "430193006", "Medication Reconciliation (procedure)"},
    {kSnomed, "710824005", "Assessment of health and social care needs"},
    {kSnomed, "274804006", "Evaluation of uterine fundal height"},
    {kSnomed, "16310003", "Ultrasonography of abdomen"},
    {kSnomed, "76601001", "Intramuscular injection"},
}};
const std::array<Code, 5> kReports{{
    {kLoinc, "58410-2", "CBC panel - Blood by Automated count"},
    {kLoinc, "24323-8", "Comprehensive metabolic 2000 panel - Serum or Plasma"},
    {kLoinc, "57698-3", "Lipid panel with direct LDL - Serum or Plasma"},
    {kLoinc, "24627-2", "Chest CT"},
    {kLoinc, "11502-2", "Laboratory report"},
}};
const std::array<Code, 5> kEncounterTypes{{
    {kSnomed, "185349003", "Encounter for check up (procedure)"},
    {kSnomed, "50849002", "Emergency room admission (procedure)"},
    {kSnomed, "185345009", "Encounter for symptom"},
    {kSnomed, "183452005", "Emergency hospital admission (procedure)"},
    {kSnomed, "410620009", "Well child visit (procedure)"},
}};
const std::array<Code, 5> kSpecialties{{
    {kSnomed, "394814009", "General practice"},
    {kSnomed, "394579002", "Cardiology"},
    {kSnomed, "394583002", "Endocrinology"},
    {kSnomed, "419772000", "Family practice"},
    {kSnomed, "394537008", "Pediatric specialty"},
}};
const std::array<Code, 4> kBodySites{{
    {kSnomed, "368209003", "Right arm"},
    {kSnomed, "368208006", "Left upper arm structure"},
    {kSnomed, "61685007", "Lower limb structure"},
    {kSnomed, "302509004", "Entire heart"},
}};
const std::array<Code, 4> kDocTypes{{
    {kLoinc, "34133-9", "Summary of episode note"},
    {kLoinc, "18842-5", "Discharge summary"},
    {kLoinc, "11488-4", "Consult note"},
    {kLoinc, "34117-2", "History and physical note"},
}};
const std::array<Code, 3> kLanguages{{
    {"urn:ietf:bcp:47", "en-US", "English (United States)"},
    {"urn:ietf:bcp:47", "de-CH", "German (Switzerland)"},
    {"urn:ietf:bcp:47", "es", "Spanish"},
}};
const std::array<Code, 4> kMarital{{
    {"http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "M", "Married"},
    {"http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "S", "Never Married"},
    {"http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "D", "Divorced"},
    {"http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "W", "Widowed"},
}};
const std::array<Code, 4> kRelationships{{
    {"http://terminology.hl7.org/CodeSystem/v3-RoleCode", "MTH", "mother"},
    {"http://terminology.hl7.org/CodeSystem/v3-RoleCode", "FTH", "father"},
    {"http://terminology.hl7.org/CodeSystem/v3-RoleCode", "SPS", "spouse"},
    {"http://terminology.hl7.org/CodeSystem/v3-RoleCode", "SIS", "sister"},
}};
const std::array<Code, 3> kOrgTypes{{
    {"http://terminology.hl7.org/CodeSystem/organization-type", "prov", "Healthcare Provider"},
    {"http://terminology.hl7.org/CodeSystem/organization-type", "pay", "Payer"},
    {"http://terminology.hl7.org/CodeSystem/organization-type", "dept", "Hospital Department"},
}};

const std::array<const char*, 16> kFamilies{"Smith",    "Müller",       "García",      "Nguyen",
                                            "O'Brien",  "Johnson",      "Łukasiewicz", "Dubois",
                                            "Kowalski", "van der Berg", "Rossi",       "Andersson",
                                            "Schäfer",  "Okafor",       "Yamamoto",    "Núñez"};
const std::array<const char*, 16> kGivens{
    "John", "Maria", "José", "Zoë",   "Anna",   "Peter", "Chloé",     "Mohammed",
    "Wei",  "Olga",  "Liam", "Søren", "Amélie", "Kwame", "Ana-Lucía", "Björn"};
const std::array<const char*, 6> kMailboxes{"john", "maria", "jose", "zoe", "wei", "b.smith"};
const std::array<const char*, 12> kCities{"Boston",  "Zürich", "São Paulo", "Berlin",
                                          "Lyon",    "Austin", "Kraków",    "Amsterdam",
                                          "Toronto", "Osaka",  "Madrid",    "Springfield"};
const std::array<const char*, 10> kStreets{
    "Main Street", "Bahnhofstrasse", "Rue de la Paix", "Elm Avenue",  "Calle Mayor",
    "Kings Road",  "Oak Lane",       "Königsallee",    "Harbour Way", "Maple Court"};
const std::array<const char*, 8> kStates{"MA", "ZH", "SP", "BE", "TX", "ON", "CA", "NY"};
const std::array<const char*, 8> kCountries{"US", "CH", "BR", "DE", "FR", "CA", "NL", "JP"};
const std::array<const char*, 6> kOrgNames{"Good Health Clinic",        "St. Mary's Hospital",
                                           "Universitätsspital Zürich", "Acme Insurance Co.",
                                           "Hôpital Saint-Louis",       "Community Care Partners"};
const std::array<const char*, 8> kNotes{"Patient reports feeling better.",
                                        "Follow up in 2 weeks.",
                                        "Discussed risks and benefits; patient agrees.",
                                        "Lab drawn fasting.",
                                        "Seen with interpreter (Spanish).",
                                        "Note: \"as needed\" per patient preference",
                                        "Multi-line\nnote with a tab\tinside",
                                        "Allergy reviewed – no change."};
const std::array<const char*, 6> kZones{"Z", "+01:00", "-05:00", "+05:30", "+14:00", "-09:30"};

std::string pad(int v, int width) {
  std::string s = std::to_string(v);
  while (static_cast<int>(s.size()) < width) s.insert(s.begin(), '0');
  return s;
}

int days_in_month(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

// The builder of one resource: a writer plus the helpers that write FHIR datatypes.
class Doc {
 public:
  Doc(Rng& r, JsonWriter& w) : r(r), w(w) {}

  Rng& r;
  JsonWriter& w;
  std::vector<std::string> contained_ids;  // of the resource being written

  Doc& k(std::string_view key) {
    w.key(key);
    return *this;
  }
  void s(std::string_view key, std::string_view v) {
    w.key(key);
    w.string(v);
  }
  void n(std::string_view key, std::string_view raw) {
    w.key(key);
    w.raw(raw);
  }
  void b(std::string_view key, bool v) {
    w.key(key);
    w.raw(v ? "true" : "false");
  }
  template <class F>
  void o(std::string_view key, F&& body) {
    w.key(key);
    w.object(body);
  }
  template <class F>
  void a(std::string_view key, F&& body) {
    w.key(key);
    w.array(body);
  }
  // An array of `count` objects, each written by body(i).
  template <class F>
  void each(std::string_view key, int count, F&& body) {
    w.key(key);
    w.array([&] {
      for (int i = 0; i < count; ++i) w.object([&] { body(i); });
    });
  }

  // ---- primitives ----
  std::string decimal(int lo, int hi, int decimals) {
    std::string v = std::to_string(r.between(lo, hi));
    if (decimals > 0) {
      v += '.';
      for (int i = 0; i < decimals; ++i) v += static_cast<char>('0' + r.below(10));
    }
    return v;
  }
  std::string year(int lo, int hi) { return std::to_string(r.between(lo, hi)); }
  std::string date(int lo = 2012, int hi = 2024) {
    int y = r.between(lo, hi);
    int m = r.between(1, 12);
    int p = r.below(100);
    if (p < 4) return std::to_string(y);
    if (p < 12) return std::to_string(y) + "-" + pad(m, 2);
    return std::to_string(y) + "-" + pad(m, 2) + "-" + pad(r.between(1, days_in_month(y, m)), 2);
  }
  std::string full_date(int lo, int hi) {
    int y = r.between(lo, hi);
    int m = r.between(1, 12);
    return std::to_string(y) + "-" + pad(m, 2) + "-" + pad(r.between(1, days_in_month(y, m)), 2);
  }
  std::string time_part(bool millis, bool zone) {
    std::string t = "T" + pad(r.between(0, 23), 2) + ":" + pad(r.between(0, 59), 2) + ":" +
                    pad(r.between(0, 59), 2);
    if (millis) t += "." + pad(r.between(0, 999), 3);
    if (zone) t += r.pct(50) ? "Z" : r.pick(kZones);
    return t;
  }
  // A dateTime of any precision; a few without zone (invalid FHIR, but found in real stores).
  std::string date_time(int lo = 2012, int hi = 2024) {
    int p = r.below(100);
    if (p < 4) return year(lo, hi);
    if (p < 9) return full_date(lo, hi).substr(0, 7);
    if (p < 30) return full_date(lo, hi);
    if (p < 33) return full_date(lo, hi) + time_part(false, false);
    return full_date(lo, hi) + time_part(r.pct(30), true);
  }
  std::string instant(int lo = 2012, int hi = 2024) {
    return full_date(lo, hi) + time_part(r.pct(60), true);
  }
  std::string ref_id() { return std::to_string(r.between(1, 5000)); }

  // ---- datatypes (each writes one value: call after k(key) or inside an array) ----
  void coding(const Code& c, bool display = true) {
    w.object([&] {
      s("system", c.system);
      s("code", c.code);
      if (display) s("display", c.display);
    });
  }
  template <size_t N>
  void cc(const std::array<Code, N>& table) {
    concept_of(table[static_cast<size_t>(r.below(static_cast<int>(N)))]);
  }
  // A CodeableConcept with the coding `c`, sometimes a second coding `alt`, often text.
  void concept_of(const Code& c, const Code* alt = nullptr) {
    w.object([&] {
      a("coding", [&] {
        coding(c, r.pct(80));
        if (alt) coding(*alt, true);
      });
      if (r.pct(60)) s("text", c.display);
    });
  }
  void simple_concept(const char* system, std::string_view code, std::string_view display = {}) {
    w.object([&] {
      a("coding", [&] {
        w.object([&] {
          s("system", system);
          s("code", code);
          if (!display.empty()) s("display", display);
        });
      });
    });
  }
  void text_concept(std::string_view text) {
    w.object([&] { s("text", text); });
  }
  void identifier(const char* system, std::string_view value, bool typed = false) {
    w.object([&] {
      if (typed) {
        if (r.pct(70)) s("use", r.pct(80) ? "usual" : "official");
        k("type").simple_concept("http://terminology.hl7.org/CodeSystem/v2-0203", "MR",
                                 "Medical record number");
      }
      s("system", system);
      s("value", value);
      if (r.pct(10)) k("period").period(2000, 2024);
      if (r.pct(10)) k("assigner").w.object([&] { s("display", r.pick(kOrgNames)); });
    });
  }
  void identifiers(std::string_view key, const char* system, int prefix_digits = 6) {
    a(key, [&] {
      identifier(system, std::to_string(r.between(1, 9)) + pad(r.below(1000000), prefix_digits),
                 r.pct(30));
      if (r.pct(20)) identifier("urn:ietf:rfc:3986", "urn:uuid:" + uuid());
    });
  }
  std::string uuid() {
    static const char* hex = "0123456789abcdef";
    std::string u;
    for (int i = 0; i < 32; ++i) {
      if (i == 8 || i == 12 || i == 16 || i == 20) u += '-';
      u += hex[r.below(16)];
    }
    return u;
  }
  // A reference to a resource of `type`: relative (most), absolute, versioned, logical
  // (identifier only), contained ("#id", when this resource has contained resources), or
  // display-only.
  void reference(std::string_view type) {
    w.object([&] {
      int p = r.below(100);
      if (p < 78) {
        s("reference", std::string(type) + "/" + ref_id());
      } else if (p < 85) {
        s("reference", "https://fhir.example.org/r4/" + std::string(type) + "/" + ref_id());
      } else if (p < 90) {
        s("reference",
          std::string(type) + "/" + ref_id() + "/_history/" + std::to_string(r.between(1, 5)));
      } else if (p < 94) {
        k("identifier").identifier("http://hospital.example.org/ids", ref_id());
      } else if (p < 97 && !contained_ids.empty()) {
        s("reference",
          "#" +
              contained_ids[static_cast<size_t>(r.below(static_cast<int>(contained_ids.size())))]);
      } else {
        s("reference", "urn:uuid:" + uuid());
      }
      if (r.pct(25)) s("type", type);
      if (r.pct(35)) s("display", std::string(r.pick(kGivens)) + " " + r.pick(kFamilies));
    });
  }
  void references(std::string_view key, std::string_view type, int max = 2) {
    int count = r.between(1, max);
    a(key, [&] {
      for (int i = 0; i < count; ++i) reference(type);
    });
  }
  void period(int lo = 2012, int hi = 2024) {
    w.object([&] {
      int p = r.below(100);
      if (p < 85) s("start", date_time(lo, hi));
      if (p >= 55) s("end", date_time(lo, hi));
    });
  }
  void quantity(const char* unit, const char* code, std::string value) {
    w.object([&] {
      n("value", value);
      if (r.pct(5)) s("comparator", r.pct(50) ? "<" : ">=");
      s("unit", unit);
      if (r.pct(90)) {
        s("system", kUcum);
        s("code", code);
      }
    });
  }
  void age() {
    w.object([&] {
      n("value", std::to_string(r.between(1, 90)));
      s("unit", "years");
      s("system", kUcum);
      s("code", "a");
    });
  }
  void range(int lo, int hi, const char* unit) {
    w.object([&] {
      k("low").quantity(unit, unit, std::to_string(lo));
      if (r.pct(80)) k("high").quantity(unit, unit, std::to_string(hi));
    });
  }
  void money(int lo, int hi) {
    w.object([&] {
      n("value", decimal(lo, hi, 2));
      s("currency", r.pct(80) ? "USD" : "EUR");
    });
  }
  void human_name(bool official) {
    w.object([&] {
      s("use", official ? "official" : (r.pct(50) ? "usual" : "maiden"));
      std::string family = r.pick(kFamilies);
      std::string given = r.pick(kGivens);
      if (r.pct(40)) s("text", given + " " + family);
      s("family", family);
      a("given", [&] {
        w.string(given);
        if (r.pct(30)) w.string(r.pick(kGivens));
      });
      if (r.pct(20)) a("prefix", [&] { w.string(r.pct(50) ? "Dr." : "Mrs."); });
      if (r.pct(10)) a("suffix", [&] { w.string(r.pct(50) ? "Jr." : "PhD"); });
      if (!official && r.pct(50)) k("period").period(1960, 2020);
    });
  }
  void names(std::string_view key) {
    a(key, [&] {
      human_name(true);
      if (r.pct(20)) human_name(false);
    });
  }
  void address() {
    w.object([&] {
      if (r.pct(80)) s("use", r.pct(70) ? "home" : "work");
      if (r.pct(30)) s("type", r.pct(50) ? "both" : "postal");
      a("line", [&] {
        w.string(std::to_string(r.between(1, 999)) + " " + r.pick(kStreets));
        if (r.pct(15)) w.string("Apt " + std::to_string(r.between(1, 40)));
      });
      s("city", r.pick(kCities));
      if (r.pct(70)) s("district", "District " + std::to_string(r.between(1, 9)));
      s("state", r.pick(kStates));
      s("postalCode", pad(r.below(100000), 5));
      s("country", r.pick(kCountries));
      if (r.pct(10)) k("period").period(1990, 2024);
    });
  }
  void addresses(std::string_view key) {
    a(key, [&] {
      address();
      if (r.pct(15)) address();
    });
  }
  void telecoms(std::string_view key) {
    int count = r.between(1, 3);
    a(key, [&] {
      for (int i = 0; i < count; ++i) {
        w.object([&] {
          int p = r.below(3);
          s("system", p == 0 ? "phone" : p == 1 ? "email" : "fax");
          if (p == 1)
            s("value",
              std::string(r.pick(kMailboxes)) + std::to_string(r.below(999)) + "@example.org");
          else
            s("value", "+1 555 " + pad(r.below(10000000), 7));
          s("use", r.pct(50) ? "home" : (r.pct(50) ? "work" : "mobile"));
          if (r.pct(10)) n("rank", std::to_string(r.between(1, 3)));
        });
      }
    });
  }
  void annotation() {
    w.object([&] {
      if (r.pct(40)) k("authorReference").reference("Practitioner");
      if (r.pct(50)) s("time", date_time());
      s("text", r.pick(kNotes));
    });
  }
  void notes() {
    if (r.pct(25)) a("note", [&] { annotation(); });
  }
  void attachment(const char* content_type) {
    w.object([&] {
      s("contentType", content_type);
      if (r.pct(50)) s("language", "en-US");
      if (r.pct(50))
        s("data", "SGVsbG8gRkhJUiB3b3JsZA==");
      else
        s("url", "https://docs.example.org/binary/" + uuid());
      if (r.pct(60)) s("title", "Document " + std::to_string(r.below(1000)));
      if (r.pct(60)) s("creation", date_time());
    });
  }
  void timing() {
    w.object([&] {
      if (r.pct(30)) a("event", [&] { w.string(date_time()); });
      o("repeat", [&] {
        if (r.pct(50)) k("boundsPeriod").period();
        n("frequency", std::to_string(r.between(1, 4)));
        n("period", "1");
        s("periodUnit", r.pct(70) ? "d" : "wk");
      });
      if (r.pct(40))
        k("code").simple_concept("http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation", "BID",
                                 "BID");
    });
  }
  void narrative(std::string_view summary) {
    o("text", [&] {
      s("status", "generated");
      s("div",
        "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>" + std::string(summary) + "</p></div>");
    });
  }
  void meta() {
    if (!r.pct(30)) return;
    o("meta", [&] {
      if (r.pct(60))
        a("profile", [&] {
          w.string("http://hl7.org/fhir/us/core/StructureDefinition/us-core-" +
                   std::string(r.pct(50) ? "patient" : "observation-lab"));
        });
      if (r.pct(40))
        a("tag", [&] {
          w.object([&] {
            s("system", "http://example.org/tags");
            s("code", r.pct(50) ? "imported" : "reviewed");
          });
        });
      if (r.pct(25))
        a("security", [&] {
          w.object([&] {
            s("system", "http://terminology.hl7.org/CodeSystem/v3-Confidentiality");
            s("code", r.pct(70) ? "N" : "R");
          });
        });
      if (r.pct(30)) s("source", "urn:source:" + std::string(r.pct(50) ? "ehr" : "lab-system"));
    });
  }
  // Occasional generic extensions on any resource.
  void generic_extension() {
    if (!r.pct(12)) return;
    a("extension", [&] {
      w.object([&] {
        s("url", "http://example.org/fhir/StructureDefinition/data-source");
        s("valueString", r.pct(50) ? "import-2019" : "manual entry");
      });
      if (r.pct(40))
        w.object([&] {
          s("url", "http://example.org/fhir/StructureDefinition/reviewed-at");
          s("valueDateTime", date_time());
        });
    });
  }
  void status(std::string_view key, std::initializer_list<const char*> values) {
    auto it = values.begin();
    std::advance(it, r.below(static_cast<int>(values.size())));
    s(key, *it);
  }
};

void contained_medication(Doc& d, const std::string& id) {
  d.w.object([&] {
    d.s("resourceType", "Medication");
    d.s("id", id);
    d.k("code").cc(kMedications);
    if (d.r.pct(50)) d.k("form").simple_concept(kSnomed, "385055001", "Tablet");
  });
}
void contained_practitioner(Doc& d, const std::string& id) {
  d.w.object([&] {
    d.s("resourceType", "Practitioner");
    d.s("id", id);
    d.names("name");
  });
}
void contained_observation(Doc& d, const std::string& id) {
  const Vital& v = d.r.pick(kVitals);
  d.w.object([&] {
    d.s("resourceType", "Observation");
    d.s("id", id);
    d.s("status", "final");
    d.k("code").w.object([&] { d.a("coding", [&] { d.coding(v.code); }); });
    d.k("valueQuantity").quantity(v.unit, v.ucum, d.decimal(v.lo, v.hi, v.decimals));
  });
}

void patient(Doc& d, bool) {
  Rng& r = d.r;
  if (r.pct(40))
    d.a("extension", [&] {
      d.w.object([&] {
        d.s("url", "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race");
        d.a("extension", [&] {
          d.w.object([&] {
            d.s("url", "ombCategory");
            d.k("valueCoding").coding({"urn:oid:2.16.840.1.113883.6.238", "2106-3", "White"});
          });
          d.w.object([&] {
            d.s("url", "text");
            d.s("valueString", "White");
          });
        });
      });
      d.w.object([&] {
        d.s("url", "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex");
        d.s("valueCode", r.pct(50) ? "F" : "M");
      });
      if (r.pct(50))
        d.w.object([&] {
          d.s("url", "http://hl7.org/fhir/StructureDefinition/patient-birthPlace");
          d.k("valueAddress").w.object([&] {
            d.s("city", r.pick(kCities));
            d.s("country", r.pick(kCountries));
          });
        });
      if (r.pct(30))
        d.w.object([&] {
          d.s("url", "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName");
          d.s("valueString", r.pick(kFamilies));
        });
    });
  d.identifiers("identifier", "http://hospital.example.org/mrn");
  d.b("active", r.pct(90));
  d.names("name");
  if (r.pct(85)) d.telecoms("telecom");
  d.status("gender", {"male", "female", "female", "male", "other", "unknown"});
  if (r.pct(95)) d.s("birthDate", d.date(1930, 2023));
  if (r.pct(10)) {
    if (r.pct(50))
      d.b("deceasedBoolean", true);
    else
      d.s("deceasedDateTime", d.date_time(2015, 2024));
  }
  if (r.pct(90)) d.addresses("address");
  if (r.pct(40)) d.k("maritalStatus").cc(kMarital);
  if (r.pct(5)) d.n("multipleBirthInteger", std::to_string(r.between(1, 3)));
  if (r.pct(30))
    d.a("communication", [&] {
      d.w.object([&] {
        d.k("language").cc(kLanguages);
        d.b("preferred", true);
      });
    });
  if (r.pct(30))
    d.each("contact", 1, [&](int) {
      d.a("relationship", [&] { d.cc(kRelationships); });
      d.k("name").human_name(true);
      d.telecoms("telecom");
    });
  if (r.pct(50)) d.references("generalPractitioner", "Practitioner", 1);
  if (r.pct(50)) d.k("managingOrganization").reference("Organization");
  if (r.pct(3))
    d.each("link", 1, [&](int) {
      d.k("other").reference("Patient");
      d.s("type", "seealso");
    });
}

void practitioner(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://hl7.org/fhir/sid/us-npi", 9);
  d.b("active", r.pct(95));
  d.names("name");
  d.telecoms("telecom");
  if (r.pct(70)) d.addresses("address");
  d.status("gender", {"male", "female"});
  if (r.pct(50)) d.s("birthDate", d.date(1940, 1995));
  if (r.pct(40))
    d.each("qualification", 1, [&](int) {
      d.k("code").simple_concept("http://terminology.hl7.org/CodeSystem/v2-0360", "MD",
                                 "Doctor of Medicine");
      if (r.pct(50)) d.k("period").period(1980, 2020);
      d.k("issuer").reference("Organization");
    });
  if (r.pct(30)) d.a("communication", [&] { d.cc(kLanguages); });
}

void practitioner_role(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://hospital.example.org/roles");
  d.b("active", true);
  if (r.pct(50)) d.k("period").period();
  d.k("practitioner").reference("Practitioner");
  d.k("organization").reference("Organization");
  d.a("code", [&] {
    d.simple_concept("http://terminology.hl7.org/CodeSystem/practitioner-role",
                     r.pct(50) ? "doctor" : "nurse");
  });
  d.a("specialty", [&] { d.cc(kSpecialties); });
  if (r.pct(60)) d.references("location", "Location");
  if (r.pct(30)) d.references("healthcareService", "HealthcareService", 1);
  d.telecoms("telecom");
  if (r.pct(20)) d.references("endpoint", "Endpoint", 1);
}

void organization(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://hl7.org/fhir/sid/us-npi", 9);
  d.b("active", true);
  d.a("type", [&] { d.cc(kOrgTypes); });
  d.s("name", r.pick(kOrgNames));
  if (r.pct(30)) d.a("alias", [&] { d.w.string("GHC " + std::to_string(r.below(99))); });
  d.telecoms("telecom");
  d.addresses("address");
  if (r.pct(20)) d.k("partOf").reference("Organization");
  if (r.pct(20)) d.references("endpoint", "Endpoint", 1);
}

void location(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://hospital.example.org/locations");
  d.status("status", {"active", "active", "suspended", "inactive"});
  d.s("name", std::string(r.pick(kOrgNames)) + " – Ward " + std::to_string(r.between(1, 20)));
  if (r.pct(20)) d.a("alias", [&] { d.w.string("Ward " + std::to_string(r.between(1, 20))); });
  if (r.pct(40)) d.s("description", "Second floor, east wing");
  d.s("mode", "instance");
  d.a("type", [&] {
    d.simple_concept("http://terminology.hl7.org/CodeSystem/v3-RoleCode", r.pct(50) ? "HOSP" : "ER",
                     r.pct(50) ? "Hospital" : "Emergency room");
  });
  d.telecoms("telecom");
  d.k("address").address();
  if (r.pct(50))
    d.k("physicalType")
        .simple_concept("http://terminology.hl7.org/CodeSystem/location-physical-type", "wa",
                        "Ward");
  if (r.pct(50))
    d.o("position", [&] {
      d.n("longitude", "-" + d.decimal(70, 120, 6));
      d.n("latitude", d.decimal(25, 50, 6));
    });
  d.k("managingOrganization").reference("Organization");
  if (r.pct(20)) d.k("partOf").reference("Location");
}

void encounter(Doc& d, bool nested) {
  Rng& r = d.r;
  if (!nested && r.pct(10)) {
    d.contained_ids.push_back("loc1");
    d.a("contained", [&] {
      d.w.object([&] {
        d.s("resourceType", "Location");
        d.s("id", "loc1");
        d.s("name", "Ambulance 7");
        d.s("mode", "kind");
      });
    });
  }
  d.identifiers("identifier", "http://hospital.example.org/encounters");
  d.status("status", {"finished", "finished", "in-progress", "planned", "cancelled", "arrived"});
  d.k("class").coding({"http://terminology.hl7.org/CodeSystem/v3-ActCode",
                       r.pct(70) ? "AMB" : "IMP",
                       r.pct(70) ? "ambulatory" : "inpatient encounter"});
  d.a("type", [&] { d.cc(kEncounterTypes); });
  if (r.pct(30)) d.k("serviceType").cc(kSpecialties);
  if (r.pct(20))
    d.k("priority")
        .simple_concept("http://terminology.hl7.org/CodeSystem/v3-ActPriority", "R", "routine");
  d.k("subject").reference("Patient");
  if (r.pct(20)) d.references("episodeOfCare", "EpisodeOfCare", 1);
  if (r.pct(20)) d.references("basedOn", "ServiceRequest", 1);
  d.each("participant", r.between(1, 2), [&](int) {
    d.a("type", [&] {
      d.simple_concept("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "PPRF",
                       "primary performer");
    });
    if (r.pct(40)) d.k("period").period();
    d.k("individual").reference(r.pct(80) ? "Practitioner" : "RelatedPerson");
  });
  if (r.pct(20)) d.references("appointment", "Appointment", 1);
  d.k("period").period();
  if (r.pct(30))
    d.o("length", [&] {
      d.n("value", std::to_string(r.between(10, 240)));
      d.s("unit", "minutes");
      d.s("system", kUcum);
      d.s("code", "min");
    });
  if (r.pct(40)) d.a("reasonCode", [&] { d.cc(kConditions); });
  if (r.pct(20)) d.references("reasonReference", "Condition", 1);
  if (r.pct(30))
    d.each("diagnosis", 1, [&](int) {
      d.k("condition").reference("Condition");
      d.k("use").simple_concept("http://terminology.hl7.org/CodeSystem/diagnosis-role", "AD",
                                "Admission diagnosis");
      d.n("rank", "1");
    });
  if (r.pct(20))
    d.o("hospitalization", [&] {
      d.k("admitSource")
          .simple_concept("http://terminology.hl7.org/CodeSystem/admit-source", "emd",
                          "From accident/emergency department");
      d.k("dischargeDisposition")
          .simple_concept("http://terminology.hl7.org/CodeSystem/discharge-disposition", "home",
                          "Home");
    });
  if (r.pct(50))
    d.each("location", 1, [&](int) {
      d.k("location").reference("Location");
      if (r.pct(50)) d.s("status", "completed");
      if (r.pct(30)) d.k("period").period();
    });
  if (r.pct(70)) d.k("serviceProvider").reference("Organization");
  if (r.pct(10)) d.k("partOf").reference("Encounter");
}

void observation(Doc& d, bool nested) {
  Rng& r = d.r;
  bool contained = !nested && r.pct(5);
  if (contained) {
    d.contained_ids.push_back("pr1");
    d.a("contained", [&] { contained_practitioner(d, "pr1"); });
  }
  if (r.pct(60)) d.identifiers("identifier", "http://lab.example.org/results");
  if (r.pct(10)) d.references("basedOn", "ServiceRequest", 1);
  d.status("status",
           {"final", "final", "final", "amended", "preliminary", "registered", "entered-in-error"});
  int kind = r.below(100);  // 0-59 vital quantity, 60-74 coded, 75-84 BP panel, rest other [x]
  const char* category = kind < 60 || kind >= 75 ? "vital-signs" : "laboratory";
  d.a("category", [&] {
    d.simple_concept("http://terminology.hl7.org/CodeSystem/observation-category", category,
                     category);
  });
  const Vital& v = r.pick(kVitals);
  if (kind < 60) {
    d.k("code").w.object([&] {
      d.a("coding", [&] { d.coding(v.code, r.pct(80)); });
      if (r.pct(50)) d.s("text", v.code.display);
    });
  } else if (kind < 75) {
    d.k("code").cc(kCodedObs);
  } else if (kind < 85) {
    d.k("code").simple_concept(kLoinc, "85354-9",
                               "Blood pressure panel with all children optional");
  } else {
    d.k("code").w.object([&] {
      d.a("coding", [&] { d.coding({kLoinc, "75325-1", "Symptom"}); });
      d.s("text", "Symptom");
    });
  }
  d.k("subject").reference(r.pct(95) ? "Patient" : "Group");
  if (r.pct(5)) d.references("focus", "Condition", 1);
  if (r.pct(60)) d.k("encounter").reference("Encounter");
  int eff = r.below(100);
  if (eff < 80)
    d.s("effectiveDateTime", d.date_time());
  else if (eff < 90)
    d.k("effectivePeriod").period();
  else if (eff < 95)
    d.s("effectiveInstant", d.instant());
  else if (eff < 98)
    d.k("effectiveTiming").timing();
  if (r.pct(50)) d.s("issued", d.instant());
  if (contained)
    d.a("performer", [&] { d.w.object([&] { d.s("reference", "#pr1"); }); });
  else if (r.pct(60))
    d.references("performer", r.pct(70) ? "Practitioner" : "Organization");
  bool absent = r.pct(4);
  if (absent) {
    d.k("dataAbsentReason")
        .simple_concept("http://terminology.hl7.org/CodeSystem/data-absent-reason", "unknown",
                        "Unknown");
  } else if (kind < 60) {
    d.k("valueQuantity").quantity(v.unit, v.ucum, d.decimal(v.lo, v.hi, v.decimals));
  } else if (kind < 75) {
    d.k("valueCodeableConcept").cc(kObsAnswers);
  } else if (kind >= 85) {
    switch (r.below(9)) {
      case 0:
        d.s("valueString", r.pick(kNotes));
        break;
      case 1:
        d.b("valueBoolean", r.pct(50));
        break;
      case 2:
        d.n("valueInteger", std::to_string(r.between(0, 10)));
        break;
      case 3:
        d.k("valueRange").range(r.between(1, 5), r.between(6, 10), "mg");
        break;
      case 4:
        d.o("valueRatio", [&] {
          d.k("numerator").quantity("mg", "mg", std::to_string(r.between(1, 500)));
          d.k("denominator").quantity("mL", "mL", std::to_string(r.between(1, 10)));
        });
        break;
      case 5:
        d.s("valueTime", pad(r.between(0, 23), 2) + ":" + pad(r.between(0, 59), 2) + ":00");
        break;
      case 6:
        d.s("valueDateTime", d.date_time());
        break;
      case 7:
        d.k("valuePeriod").period();
        break;
      default:
        d.k("valueQuantity").quantity("score", "{score}", d.decimal(0, 10, 1));
        break;
    }
  }
  if (r.pct(20))
    d.a("interpretation", [&] {
      d.simple_concept("http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                       r.pct(50) ? "H" : "N", r.pct(50) ? "High" : "Normal");
    });
  d.notes();
  if (r.pct(10)) d.k("bodySite").cc(kBodySites);
  if (r.pct(10)) d.k("method").text_concept("Automated");
  if (r.pct(10)) d.k("specimen").reference("Specimen");
  if (r.pct(5)) d.k("device").reference("Device");
  if (kind < 60 && r.pct(30))
    d.each("referenceRange", 1, [&](int) {
      d.k("low").quantity(v.unit, v.ucum, std::to_string(v.lo));
      d.k("high").quantity(v.unit, v.ucum, std::to_string(v.hi));
      if (r.pct(30)) d.s("text", "normal");
    });
  if (r.pct(5)) d.references("hasMember", "Observation");
  if (r.pct(5)) d.references("derivedFrom", "Observation", 1);
  if (kind >= 75 && kind < 85)
    d.each("component", 2, [&](int i) {
      d.k("code").simple_concept(kLoinc, i == 0 ? "8480-6" : "8462-4",
                                 i == 0 ? "Systolic blood pressure" : "Diastolic blood pressure");
      if (r.pct(95))
        d.k("valueQuantity")
            .quantity("mmHg", "mm[Hg]",
                      std::to_string(i == 0 ? r.between(95, 180) : r.between(55, 110)));
      else
        d.k("dataAbsentReason")
            .simple_concept("http://terminology.hl7.org/CodeSystem/data-absent-reason", "error");
      if (r.pct(20))
        d.a("interpretation", [&] {
          d.simple_concept("http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                           "N");
        });
    });
}

void onset_like(Doc& d, const char* prefix, bool allow_string) {
  Rng& r = d.r;
  std::string p(prefix);
  switch (r.below(allow_string ? 6 : 5)) {
    case 0:
    case 1:
      d.s(p + "DateTime", d.date_time(1990, 2024));
      break;
    case 2:
      d.k(p + "Age").age();
      break;
    case 3:
      d.k(p + "Period").period(1990, 2024);
      break;
    case 4:
      d.k(p + "Range").range(r.between(1, 30), r.between(31, 80), "a");
      break;
    default:
      d.s(p + "String", "in childhood");
      break;
  }
}

void condition(Doc& d, bool) {
  Rng& r = d.r;
  if (r.pct(40)) d.identifiers("identifier", "http://hospital.example.org/problems");
  d.k("clinicalStatus")
      .simple_concept("http://terminology.hl7.org/CodeSystem/condition-clinical",
                      r.pct(70) ? "active" : "resolved");
  if (r.pct(80))
    d.k("verificationStatus")
        .simple_concept("http://terminology.hl7.org/CodeSystem/condition-ver-status",
                        r.pct(80) ? "confirmed" : "provisional");
  d.a("category", [&] {
    d.simple_concept("http://terminology.hl7.org/CodeSystem/condition-category",
                     r.pct(60) ? "problem-list-item" : "encounter-diagnosis");
  });
  if (r.pct(30))
    d.k("severity")
        .simple_concept(kSnomed, r.pct(50) ? "24484000" : "6736007",
                        r.pct(50) ? "Severe" : "Moderate");
  {
    // SNOMED, sometimes with the matching ICD-10-CM coding (the tables share their first rows)
    size_t i = static_cast<size_t>(r.below(static_cast<int>(kConditions.size())));
    const Code* alt = i < kIcd10.size() && r.pct(40) ? &kIcd10[i] : nullptr;
    d.k("code").concept_of(kConditions[i], alt);
  }
  if (r.pct(20)) d.a("bodySite", [&] { d.cc(kBodySites); });
  d.k("subject").reference("Patient");
  if (r.pct(60)) d.k("encounter").reference("Encounter");
  if (r.pct(85)) onset_like(d, "onset", true);
  if (r.pct(30)) onset_like(d, "abatement", true);
  if (r.pct(70)) d.s("recordedDate", d.date_time());
  if (r.pct(40)) d.k("recorder").reference("Practitioner");
  if (r.pct(20)) d.k("asserter").reference(r.pct(50) ? "Practitioner" : "Patient");
  if (r.pct(10))
    d.each("stage", 1, [&](int) {
      d.k("summary").text_concept("Stage II");
      d.references("assessment", "DiagnosticReport", 1);
    });
  if (r.pct(15))
    d.each("evidence", 1, [&](int) {
      d.a("code", [&] { d.cc(kObsAnswers); });
      d.references("detail", "Observation", 1);
    });
  d.notes();
}

void procedure(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://hospital.example.org/procedures");
  if (r.pct(10))
    d.a("instantiatesCanonical",
        [&] { d.w.string("http://example.org/fhir/PlanDefinition/kidney-care|1.0"); });
  if (r.pct(10))
    d.a("instantiatesUri", [&] { d.w.string("http://example.org/protocols/appendectomy"); });
  if (r.pct(20)) d.references("basedOn", "ServiceRequest", 1);
  if (r.pct(10)) d.references("partOf", "Procedure", 1);
  d.status("status", {"completed", "completed", "in-progress", "not-done", "preparation"});
  if (r.pct(30)) d.k("category").cc(kSpecialties);
  d.k("code").cc(kProcedures);
  d.k("subject").reference("Patient");
  if (r.pct(70)) d.k("encounter").reference("Encounter");
  switch (r.below(6)) {
    case 0:
    case 1:
    case 2:
      d.s("performedDateTime", d.date_time());
      break;
    case 3:
      d.k("performedPeriod").period();
      break;
    case 4:
      d.s("performedString", "Summer 2019");
      break;
    default:
      d.k("performedAge").age();
      break;
  }
  if (r.pct(30)) d.k("recorder").reference("Practitioner");
  if (r.pct(70))
    d.each("performer", 1, [&](int) {
      if (r.pct(30)) d.k("function").cc(kSpecialties);
      d.k("actor").reference("Practitioner");
      if (r.pct(30)) d.k("onBehalfOf").reference("Organization");
    });
  if (r.pct(50)) d.k("location").reference("Location");
  if (r.pct(40)) d.a("reasonCode", [&] { d.cc(kConditions); });
  if (r.pct(30)) d.references("reasonReference", "Condition", 1);
  if (r.pct(20)) d.a("bodySite", [&] { d.cc(kBodySites); });
  if (r.pct(20)) d.references("report", "DiagnosticReport", 1);
  d.notes();
}

void medication_x(Doc& d, bool nested) {
  // medication[x]: a code, a reference, or a reference to a contained Medication
  Rng& r = d.r;
  if (!nested && !d.contained_ids.empty() && d.contained_ids[0] == "med1") {
    d.o("medicationReference", [&] { d.s("reference", "#med1"); });
  } else if (r.pct(75)) {
    d.k("medicationCodeableConcept").cc(kMedications);
  } else {
    d.k("medicationReference").reference("Medication");
  }
}
void maybe_contained_medication(Doc& d, bool nested) {
  if (!nested && d.r.pct(30)) {
    d.contained_ids.push_back("med1");
    d.a("contained", [&] { contained_medication(d, "med1"); });
  }
}
void dosage(Doc& d) {
  Rng& r = d.r;
  d.w.object([&] {
    d.n("sequence", "1");
    d.s("text", "Take 1 tablet by mouth " + std::string(r.pct(50) ? "daily" : "twice daily"));
    d.k("timing").timing();
    if (r.pct(30)) d.b("asNeededBoolean", r.pct(50));
    d.k("route").simple_concept(kSnomed, "26643006", "Oral route");
    d.each("doseAndRate", 1, [&](int) {
      d.k("doseQuantity").quantity("tablet", "{tbl}", std::to_string(r.between(1, 2)));
    });
  });
}

void medication_request(Doc& d, bool nested) {
  Rng& r = d.r;
  maybe_contained_medication(d, nested);
  d.identifiers("identifier", "http://pharmacy.example.org/orders");
  d.status("status", {"active", "active", "completed", "stopped", "on-hold", "cancelled"});
  d.status("intent", {"order", "order", "plan", "proposal"});
  if (r.pct(50))
    d.a("category", [&] {
      d.simple_concept("http://terminology.hl7.org/CodeSystem/medicationrequest-category",
                       r.pct(50) ? "outpatient" : "community");
    });
  if (r.pct(30)) d.status("priority", {"routine", "urgent", "stat"});
  if (r.pct(5)) d.b("doNotPerform", false);
  if (r.pct(10)) d.b("reportedBoolean", false);
  medication_x(d, nested);
  d.k("subject").reference("Patient");
  if (r.pct(60)) d.k("encounter").reference("Encounter");
  d.s("authoredOn", d.date_time());
  d.k("requester").reference("Practitioner");
  if (r.pct(20)) d.k("performer").reference("Practitioner");
  if (r.pct(40)) d.a("reasonCode", [&] { d.cc(kConditions); });
  if (r.pct(20)) d.references("reasonReference", "Condition", 1);
  if (r.pct(20))
    d.k("groupIdentifier").identifier("http://pharmacy.example.org/groups", d.ref_id());
  if (r.pct(20)) d.references("insurance", "Coverage", 1);
  d.notes();
  d.a("dosageInstruction", [&] { dosage(d); });
  if (r.pct(50))
    d.o("dispenseRequest", [&] {
      d.k("validityPeriod").period();
      d.n("numberOfRepeatsAllowed", std::to_string(r.between(0, 5)));
      d.k("quantity").quantity("tablet", "{tbl}", std::to_string(r.between(10, 90)));
      if (r.pct(40)) d.k("performer").reference("Organization");
    });
  if (r.pct(20)) d.o("substitution", [&] { d.b("allowedBoolean", r.pct(50)); });
}

void medication_statement(Doc& d, bool nested) {
  Rng& r = d.r;
  maybe_contained_medication(d, nested);
  d.identifiers("identifier", "http://pharmacy.example.org/statements");
  if (r.pct(10)) d.references("partOf", "Procedure", 1);
  d.status("status", {"active", "completed", "intended", "stopped"});
  if (r.pct(40))
    d.k("category")
        .simple_concept("http://terminology.hl7.org/CodeSystem/medication-statement-category",
                        "outpatient");
  medication_x(d, nested);
  d.k("subject").reference("Patient");
  if (r.pct(40)) d.k("context").reference("Encounter");
  if (r.pct(70))
    d.s("effectiveDateTime", d.date_time());
  else
    d.k("effectivePeriod").period();
  d.s("dateAsserted", d.date_time());
  if (r.pct(40)) d.k("informationSource").reference("Practitioner");
  if (r.pct(40)) d.a("reasonCode", [&] { d.cc(kConditions); });
  d.a("dosage", [&] { dosage(d); });
}

void medication(Doc& d, bool) {
  Rng& r = d.r;
  if (r.pct(50)) d.identifiers("identifier", "http://pharmacy.example.org/ndc");
  d.k("code").cc(kMedications);
  d.s("status", "active");
  if (r.pct(50)) d.k("manufacturer").reference("Organization");
  d.k("form").simple_concept(kSnomed, "385055001", "Tablet");
  if (r.pct(40))
    d.each("ingredient", 1, [&](int) {
      d.k("itemCodeableConcept").cc(kMedications);
      d.b("isActive", true);
      d.o("strength", [&] {
        d.k("numerator").quantity("mg", "mg", std::to_string(r.between(1, 500)));
        d.k("denominator").quantity("tablet", "{tbl}", "1");
      });
    });
  if (r.pct(50))
    d.o("batch", [&] {
      d.s("lotNumber", "LOT" + std::to_string(r.between(1000, 9999)));
      d.s("expirationDate", d.instant(2024, 2028));
    });
}

void medication_administration(Doc& d, bool nested) {
  Rng& r = d.r;
  maybe_contained_medication(d, nested);
  d.identifiers("identifier", "http://pharmacy.example.org/admin");
  d.status("status", {"completed", "in-progress", "not-done", "stopped"});
  medication_x(d, nested);
  d.k("subject").reference("Patient");
  if (r.pct(60)) d.k("context").reference("Encounter");
  if (r.pct(60))
    d.s("effectiveDateTime", d.date_time());
  else
    d.k("effectivePeriod").period();
  d.each("performer", 1, [&](int) { d.k("actor").reference("Practitioner"); });
  if (r.pct(60)) d.k("request").reference("MedicationRequest");
  if (r.pct(10)) d.references("device", "Device", 1);
  if (r.pct(40)) d.a("reasonCode", [&] { d.cc(kConditions); });
  d.o("dosage", [&] {
    d.s("text", "500 mg IV");
    d.k("route").simple_concept(kSnomed, "47625008", "Intravenous route");
    d.k("dose").quantity("mg", "mg", std::to_string(r.between(50, 1000)));
  });
}

void medication_dispense(Doc& d, bool nested) {
  Rng& r = d.r;
  maybe_contained_medication(d, nested);
  d.identifiers("identifier", "http://pharmacy.example.org/dispense");
  d.status("status", {"completed", "in-progress", "preparation", "cancelled"});
  medication_x(d, nested);
  d.k("subject").reference("Patient");
  if (r.pct(40)) d.k("context").reference("Encounter");
  d.each("performer", 1, [&](int) { d.k("actor").reference("Practitioner"); });
  d.references("authorizingPrescription", "MedicationRequest", 1);
  d.k("type").simple_concept("http://terminology.hl7.org/CodeSystem/v3-ActCode", "FF",
                             "First Fill");
  d.k("quantity").quantity("tablet", "{tbl}", std::to_string(r.between(10, 90)));
  d.k("daysSupply").quantity("days", "d", std::to_string(r.between(10, 90)));
  if (r.pct(70)) d.s("whenPrepared", d.date_time());
  if (r.pct(70)) d.s("whenHandedOver", d.date_time());
  if (r.pct(30)) d.k("destination").reference("Location");
  if (r.pct(30)) d.references("receiver", "Patient", 1);
}

void immunization(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://hospital.example.org/immunizations");
  d.status("status", {"completed", "completed", "completed", "not-done", "entered-in-error"});
  if (r.pct(10))
    d.k("statusReason")
        .simple_concept("http://terminology.hl7.org/CodeSystem/v3-ActReason", "PATOBJ",
                        "patient objection");
  d.k("vaccineCode").cc(kVaccines);
  d.k("patient").reference("Patient");
  if (r.pct(50)) d.k("encounter").reference("Encounter");
  if (r.pct(90))
    d.s("occurrenceDateTime", d.date_time());
  else
    d.s("occurrenceString", "spring 2019");
  if (r.pct(50)) d.s("recorded", d.date_time());
  d.b("primarySource", r.pct(80));
  if (r.pct(50)) d.k("location").reference("Location");
  if (r.pct(50)) d.k("manufacturer").reference("Organization");
  if (r.pct(60)) d.s("lotNumber", "AAJN" + std::to_string(r.between(10000, 99999)));
  if (r.pct(40)) d.s("expirationDate", d.full_date(2020, 2026));
  if (r.pct(50)) d.k("site").cc(kBodySites);
  if (r.pct(40))
    d.k("route").simple_concept("http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration",
                                "IM", "Injection, intramuscular");
  if (r.pct(50)) d.k("doseQuantity").quantity("mL", "mL", "0." + std::to_string(r.between(1, 9)));
  if (r.pct(60))
    d.each("performer", 1, [&](int) {
      d.k("function")
          .simple_concept("http://terminology.hl7.org/CodeSystem/v2-0443", "AP",
                          "Administering Provider");
      d.k("actor").reference("Practitioner");
    });
  d.notes();
  if (r.pct(20)) d.a("reasonCode", [&] { d.cc(kConditions); });
  if (r.pct(10))
    d.each("reaction", 1, [&](int) {
      d.s("date", d.date_time());
      d.k("detail").reference("Observation");
      d.b("reported", false);
    });
  if (r.pct(40))
    d.each("protocolApplied", 1, [&](int) {
      d.s("series", "2-dose");
      d.a("targetDisease", [&] { d.cc(kConditions); });
      d.n("doseNumberPositiveInt", std::to_string(r.between(1, 2)));
      d.n("seriesDosesPositiveInt", "2");
    });
}

void allergy_intolerance(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://hospital.example.org/allergies");
  d.k("clinicalStatus")
      .simple_concept("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                      r.pct(80) ? "active" : "resolved");
  d.k("verificationStatus")
      .simple_concept("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                      r.pct(80) ? "confirmed" : "unconfirmed");
  d.status("type", {"allergy", "intolerance"});
  d.a("category", [&] { d.w.string(r.pct(50) ? "food" : "medication"); });
  d.status("criticality", {"low", "high", "unable-to-assess"});
  d.k("code").cc(kAllergens);
  d.k("patient").reference("Patient");
  if (r.pct(30)) d.k("encounter").reference("Encounter");
  if (r.pct(70)) onset_like(d, "onset", true);
  if (r.pct(70)) d.s("recordedDate", d.date_time());
  if (r.pct(40)) d.k("recorder").reference("Practitioner");
  if (r.pct(30)) d.k("asserter").reference("Patient");
  if (r.pct(30)) d.s("lastOccurrence", d.date_time());
  d.notes();
  if (r.pct(60))
    d.each("reaction", r.between(1, 2), [&](int) {
      if (r.pct(40)) d.k("substance").cc(kAllergens);
      d.a("manifestation", [&] {
        d.simple_concept(kSnomed, r.pct(50) ? "39579001" : "271807003",
                         r.pct(50) ? "Anaphylaxis" : "Skin rash");
      });
      if (r.pct(30)) d.s("description", "Swelling and hives");
      if (r.pct(50)) d.s("onset", d.date_time());
      d.status("severity", {"mild", "moderate", "severe"});
      if (r.pct(30)) d.k("exposureRoute").simple_concept(kSnomed, "26643006", "Oral route");
    });
}

void diagnostic_report(Doc& d, bool nested) {
  Rng& r = d.r;
  int contained = !nested && r.pct(20) ? r.between(1, 3) : 0;
  if (contained) {
    d.a("contained", [&] {
      for (int i = 0; i < contained; ++i) {
        std::string id = "obs" + std::to_string(i + 1);
        d.contained_ids.push_back(id);
        contained_observation(d, id);
      }
    });
  }
  d.identifiers("identifier", "http://lab.example.org/reports");
  if (r.pct(30)) d.references("basedOn", "ServiceRequest", 1);
  d.status("status", {"final", "final", "amended", "preliminary", "registered"});
  d.a("category", [&] {
    d.simple_concept("http://terminology.hl7.org/CodeSystem/v2-0074", r.pct(70) ? "LAB" : "RAD",
                     r.pct(70) ? "Laboratory" : "Radiology");
  });
  d.k("code").cc(kReports);
  d.k("subject").reference("Patient");
  if (r.pct(60)) d.k("encounter").reference("Encounter");
  if (r.pct(70))
    d.s("effectiveDateTime", d.date_time());
  else
    d.k("effectivePeriod").period();
  d.s("issued", d.instant());
  d.references("performer", r.pct(50) ? "Organization" : "Practitioner", 1);
  if (r.pct(20)) d.references("resultsInterpreter", "Practitioner", 1);
  if (r.pct(30)) d.references("specimen", "Specimen", 1);
  d.a("result", [&] {
    for (const auto& id : d.contained_ids) d.w.object([&] { d.s("reference", "#" + id); });
    int more = r.between(contained ? 0 : 1, 4);
    for (int i = 0; i < more; ++i) d.reference("Observation");
  });
  if (r.pct(10))
    d.each("media", 1, [&](int) {
      d.s("comment", "Image 1");
      d.k("link").reference("Media");
    });
  if (r.pct(50)) d.s("conclusion", "Within normal limits.");
  if (r.pct(30)) d.a("conclusionCode", [&] { d.cc(kConditions); });
  if (r.pct(30)) d.a("presentedForm", [&] { d.attachment("application/pdf"); });
}

void service_request(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://hospital.example.org/orders");
  if (r.pct(10))
    d.a("instantiatesCanonical",
        [&] { d.w.string("http://example.org/fhir/ActivityDefinition/lab-order"); });
  if (r.pct(20)) d.references("basedOn", "CarePlan", 1);
  if (r.pct(10)) d.references("replaces", "ServiceRequest", 1);
  if (r.pct(30)) d.k("requisition").identifier("http://hospital.example.org/req", d.ref_id());
  d.status("status", {"active", "completed", "draft", "revoked"});
  d.status("intent", {"order", "plan", "original-order"});
  if (r.pct(60)) d.a("category", [&] { d.cc(kSpecialties); });
  if (r.pct(40)) d.status("priority", {"routine", "urgent", "asap", "stat"});
  if (r.pct(70))
    d.k("code").cc(kProcedures);
  else
    d.k("code").cc(kReports);
  if (r.pct(20)) d.k("quantityQuantity").quantity("tablet", "{tbl}", "2");
  d.k("subject").reference("Patient");
  if (r.pct(50)) d.k("encounter").reference("Encounter");
  switch (r.below(4)) {
    case 0:
      d.s("occurrenceDateTime", d.date_time());
      break;
    case 1:
      d.k("occurrencePeriod").period();
      break;
    case 2:
      d.k("occurrenceTiming").timing();
      break;
    default:
      break;
  }
  if (r.pct(20)) d.b("asNeededBoolean", true);
  d.s("authoredOn", d.date_time());
  d.k("requester").reference("Practitioner");
  if (r.pct(30)) d.k("performerType").cc(kSpecialties);
  if (r.pct(50)) d.references("performer", "Practitioner", 1);
  if (r.pct(30)) d.a("reasonCode", [&] { d.cc(kConditions); });
  if (r.pct(20)) d.references("specimen", "Specimen", 1);
  if (r.pct(20)) d.a("bodySite", [&] { d.cc(kBodySites); });
  d.notes();
}

void care_plan(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://hospital.example.org/careplans");
  if (r.pct(20))
    d.a("instantiatesCanonical", [&] { d.w.string("http://example.org/fhir/PlanDefinition/dm"); });
  if (r.pct(20)) d.references("basedOn", "CarePlan", 1);
  if (r.pct(10)) d.references("replaces", "CarePlan", 1);
  if (r.pct(10)) d.references("partOf", "CarePlan", 1);
  d.status("status", {"active", "completed", "draft", "revoked"});
  d.status("intent", {"plan", "order", "proposal"});
  d.a("category", [&] {
    d.simple_concept("http://hl7.org/fhir/us/core/CodeSystem/careplan-category", "assess-plan");
  });
  if (r.pct(50)) d.s("title", "Diabetes self management plan");
  d.k("subject").reference("Patient");
  if (r.pct(50)) d.k("encounter").reference("Encounter");
  d.k("period").period();
  if (r.pct(50)) d.s("created", d.date_time());
  if (r.pct(50)) d.k("author").reference("Practitioner");
  if (r.pct(30)) d.references("careTeam", "CareTeam", 1);
  if (r.pct(50)) d.references("addresses", "Condition");
  if (r.pct(30)) d.references("goal", "Goal", 1);
  d.each("activity", r.between(1, 2), [&](int) {
    if (r.pct(30)) d.k("reference").reference("ServiceRequest");
    d.o("detail", [&] {
      d.s("kind", "ServiceRequest");
      d.k("code").cc(kProcedures);
      d.status("status", {"scheduled", "in-progress", "completed"});
      int p = r.below(3);
      if (p == 0) d.s("scheduledString", "daily");
      if (p == 1) d.k("scheduledPeriod").period();
      if (p == 2) d.k("scheduledTiming").timing();
      if (r.pct(30)) d.k("location").reference("Location");
      if (r.pct(40)) d.references("performer", "Practitioner", 1);
      if (r.pct(20)) d.k("productCodeableConcept").cc(kMedications);
    });
  });
}

void care_team(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://hospital.example.org/careteams");
  d.status("status", {"active", "proposed", "inactive"});
  d.a("category", [&] { d.simple_concept(kLoinc, "LA27976-2", "Encounter-focused care team"); });
  d.s("name", "Care team of " + std::string(r.pick(kFamilies)));
  d.k("subject").reference("Patient");
  if (r.pct(40)) d.k("encounter").reference("Encounter");
  d.k("period").period();
  d.each("participant", r.between(1, 3), [&](int) {
    d.a("role", [&] { d.cc(kSpecialties); });
    d.k("member").reference(r.pct(70) ? "Practitioner" : "RelatedPerson");
    if (r.pct(30)) d.k("period").period();
  });
  if (r.pct(50)) d.references("managingOrganization", "Organization", 1);
  if (r.pct(30)) d.telecoms("telecom");
}

void goal(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://hospital.example.org/goals");
  d.status("lifecycleStatus", {"active", "completed", "proposed", "cancelled"});
  if (r.pct(50))
    d.k("achievementStatus")
        .simple_concept("http://terminology.hl7.org/CodeSystem/goal-achievement", "improving");
  if (r.pct(50))
    d.a("category", [&] {
      d.simple_concept("http://terminology.hl7.org/CodeSystem/goal-category", "dietary");
    });
  d.k("description").text_concept("Lose 5 kg in 3 months");
  d.k("subject").reference("Patient");
  if (r.pct(50))
    d.s("startDate", d.full_date(2015, 2024));
  else if (r.pct(30))
    d.k("startCodeableConcept").text_concept("after discharge");
  d.each("target", 1, [&](int) {
    d.k("measure").simple_concept(kLoinc, "29463-7", "Body weight");
    d.k("detailQuantity").quantity("kg", "kg", d.decimal(60, 90, 1));
    if (r.pct(50))
      d.s("dueDate", d.full_date(2015, 2025));
    else
      d.o("dueDuration", [&] {
        d.n("value", "90");
        d.s("unit", "days");
        d.s("system", kUcum);
        d.s("code", "d");
      });
  });
  if (r.pct(40)) d.s("statusDate", d.full_date(2015, 2024));
  if (r.pct(40)) d.k("expressedBy").reference("Patient");
  if (r.pct(40)) d.references("addresses", "Condition", 1);
}

void document_reference(Doc& d, bool) {
  Rng& r = d.r;
  d.k("masterIdentifier")
      .identifier("urn:ietf:rfc:3986", "urn:oid:1.3.6.1.4.1.21367." + d.ref_id());
  d.identifiers("identifier", "http://hospital.example.org/documents");
  d.status("status", {"current", "current", "superseded", "entered-in-error"});
  if (r.pct(40)) d.s("docStatus", "final");
  d.k("type").cc(kDocTypes);
  d.a("category", [&] {
    d.simple_concept("http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
                     "clinical-note", "Clinical Note");
  });
  d.k("subject").reference("Patient");
  d.s("date", d.instant());
  d.references("author", "Practitioner", 1);
  if (r.pct(30)) d.k("authenticator").reference("Practitioner");
  if (r.pct(30)) d.k("custodian").reference("Organization");
  if (r.pct(10))
    d.each("relatesTo", 1, [&](int) {
      d.s("code", "replaces");
      d.k("target").reference("DocumentReference");
    });
  if (r.pct(40)) d.s("description", "Discharge summary – cardiology");
  if (r.pct(20))
    d.a("securityLabel",
        [&] { d.simple_concept("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "N"); });
  d.each("content", 1, [&](int) {
    d.k("attachment").attachment(r.pct(50) ? "application/pdf" : "text/plain");
    if (r.pct(50))
      d.k("format").coding({"http://ihe.net/fhir/ValueSet/IHE.FormatCode.codesystem",
                            "urn:ihe:iti:xds:2017:mimeTypeSufficient", "mimeType Sufficient"});
  });
  if (r.pct(60))
    d.o("context", [&] {
      d.references("encounter", "Encounter", 1);
      if (r.pct(30)) d.a("event", [&] { d.cc(kProcedures); });
      d.k("period").period();
      if (r.pct(40)) d.k("facilityType").simple_concept(kSnomed, "22232009", "Hospital");
      if (r.pct(40)) d.k("practiceSetting").cc(kSpecialties);
      if (r.pct(30)) d.k("sourcePatientInfo").reference("Patient");
      if (r.pct(20)) d.references("related", "Procedure", 1);
    });
}

void appointment(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://hospital.example.org/appointments");
  d.status("status", {"booked", "fulfilled", "cancelled", "noshow", "proposed"});
  if (r.pct(30)) d.a("serviceCategory", [&] { d.cc(kSpecialties); });
  if (r.pct(40)) d.a("serviceType", [&] { d.cc(kEncounterTypes); });
  if (r.pct(40)) d.a("specialty", [&] { d.cc(kSpecialties); });
  if (r.pct(40))
    d.k("appointmentType")
        .simple_concept("http://terminology.hl7.org/CodeSystem/v2-0276", "FOLLOWUP",
                        "A follow up visit");
  if (r.pct(40)) d.a("reasonCode", [&] { d.cc(kConditions); });
  if (r.pct(20)) d.references("reasonReference", "Condition", 1);
  if (r.pct(30)) d.n("priority", std::to_string(r.between(0, 9)));
  if (r.pct(50)) d.s("description", "Follow-up visit");
  std::string day = d.full_date(2015, 2025);
  int hour = r.between(8, 16);
  d.s("start", day + "T" + pad(hour, 2) + ":00:00" + r.pick(kZones));
  d.s("end", day + "T" + pad(hour, 2) + ":30:00" + r.pick(kZones));
  d.n("minutesDuration", "30");
  if (r.pct(30)) d.references("slot", "Slot", 1);
  if (r.pct(60)) d.s("created", d.date_time());
  if (r.pct(20)) d.references("basedOn", "ServiceRequest", 1);
  d.each("participant", r.between(1, 3), [&](int i) {
    if (r.pct(50))
      d.a("type", [&] {
        d.simple_concept("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "ATND");
      });
    d.k("actor").reference(i == 0 ? "Patient" : (r.pct(50) ? "Practitioner" : "Location"));
    d.s("required", "required");
    d.status("status", {"accepted", "tentative", "needs-action"});
  });
  if (r.pct(20)) d.a("requestedPeriod", [&] { d.period(); });
}

void coverage(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://payer.example.org/members");
  d.status("status", {"active", "cancelled", "draft"});
  d.k("type").simple_concept("http://terminology.hl7.org/CodeSystem/v3-ActCode", "EHCPOL",
                             "extended healthcare");
  if (r.pct(40)) d.k("policyHolder").reference("Patient");
  d.k("subscriber").reference("Patient");
  d.s("subscriberId", "SUB" + std::to_string(r.between(100000, 999999)));
  d.k("beneficiary").reference("Patient");
  if (r.pct(30)) d.s("dependent", "0" + std::to_string(r.between(1, 5)));
  d.k("relationship")
      .simple_concept("http://terminology.hl7.org/CodeSystem/subscriber-relationship", "self");
  d.k("period").period();
  d.references("payor", "Organization", 1);
  d.each("class", r.between(1, 2), [&](int i) {
    d.k("type").simple_concept("http://terminology.hl7.org/CodeSystem/coverage-class",
                               i == 0 ? "group" : "plan");
    d.s("value", "CB" + std::to_string(r.between(100, 999)));
    d.s("name", i == 0 ? "Corporate Baker's Inc. Local #35" : "Full Coverage: Medical, Dental");
  });
  if (r.pct(30)) d.n("order", "1");
}

void claim_items(Doc& d, bool eob) {
  Rng& r = d.r;
  d.each("item", r.between(1, 3), [&](int i) {
    d.n("sequence", std::to_string(i + 1));
    d.k("productOrService")
        .simple_concept("http://www.ama-assn.org/go/cpt", r.pct(50) ? "99213" : "80053");
    d.s("servicedDate", d.full_date(2015, 2024));
    d.k("unitPrice").money(20, 500);
    d.k("net").money(20, 500);
    if (r.pct(30)) d.references("encounter", "Encounter", 1);
    if (!eob && r.pct(10)) d.references("udi", "Device", 1);
  });
}

void claim(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://payer.example.org/claims");
  d.status("status", {"active", "draft", "cancelled"});
  d.k("type").simple_concept("http://terminology.hl7.org/CodeSystem/claim-type", "professional");
  d.s("use", "claim");
  d.k("patient").reference("Patient");
  d.k("billablePeriod").period();
  d.s("created", d.date_time());
  if (r.pct(40)) d.k("enterer").reference("Practitioner");
  d.k("insurer").reference("Organization");
  d.k("provider").reference("Organization");
  d.k("priority").simple_concept("http://terminology.hl7.org/CodeSystem/processpriority", "normal");
  if (r.pct(20)) d.k("prescription").reference("MedicationRequest");
  if (r.pct(30))
    d.o("payee", [&] {
      d.k("type").simple_concept("http://terminology.hl7.org/CodeSystem/payeetype", "provider");
      d.k("party").reference("Organization");
    });
  if (r.pct(20)) d.k("facility").reference("Location");
  if (r.pct(40))
    d.each("careTeam", 1, [&](int) {
      d.n("sequence", "1");
      d.k("provider").reference("Practitioner");
    });
  d.each("diagnosis", 1, [&](int) {
    d.n("sequence", "1");
    d.k("diagnosisCodeableConcept").cc(kIcd10);
  });
  d.each("insurance", 1, [&](int) {
    d.n("sequence", "1");
    d.b("focal", true);
    d.k("coverage").reference("Coverage");
  });
  claim_items(d, false);
  d.k("total").money(100, 2000);
}

void explanation_of_benefit(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://payer.example.org/eob");
  d.s("status", "active");
  d.k("type").simple_concept("http://terminology.hl7.org/CodeSystem/claim-type", "institutional");
  d.s("use", "claim");
  d.k("patient").reference("Patient");
  d.k("billablePeriod").period();
  d.s("created", d.date_time());
  if (r.pct(30)) d.k("enterer").reference("Practitioner");
  d.k("insurer").reference("Organization");
  d.k("provider").reference("Practitioner");
  if (r.pct(50)) d.k("claim").reference("Claim");
  d.status("outcome", {"complete", "partial", "error"});
  if (r.pct(40)) d.s("disposition", "Claim settled as per contract.");
  if (r.pct(50))
    d.each("careTeam", 1, [&](int) {
      d.n("sequence", "1");
      d.k("provider").reference("Practitioner");
    });
  if (r.pct(30)) d.k("facility").reference("Location");
  d.each("insurance", 1, [&](int) {
    d.b("focal", true);
    d.k("coverage").reference("Coverage");
  });
  claim_items(d, true);
  d.each("total", 1, [&](int) {
    d.k("category")
        .simple_concept("http://terminology.hl7.org/CodeSystem/adjudication", "submitted");
    d.k("amount").money(100, 2000);
  });
  if (r.pct(50)) d.o("payment", [&] { d.k("amount").money(100, 2000); });
}

void device(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://hospital.example.org/devices");
  if (r.pct(50))
    d.each("udiCarrier", 1, [&](int) {
      d.s("deviceIdentifier", "0" + std::to_string(r.between(1000000, 9999999)));
      d.s("carrierHRF", "(01)0" + std::to_string(r.between(1000000, 9999999)) + "(17)250101");
    });
  d.status("status", {"active", "inactive", "entered-in-error"});
  d.s("manufacturer", r.pct(50) ? "Acme Devices" : "Medtronic");
  d.each("deviceName", 1, [&](int) {
    d.s("name", r.pct(50) ? "Insulin pump X200" : "Pacemaker P-7");
    d.s("type", "user-friendly-name");
  });
  if (r.pct(50)) d.s("modelNumber", "M" + std::to_string(r.between(100, 999)));
  d.k("type").simple_concept(kSnomed, r.pct(50) ? "69805005" : "14106009",
                             r.pct(50) ? "Insulin pump" : "Cardiac pacemaker");
  if (r.pct(70)) d.k("patient").reference("Patient");
  if (r.pct(30)) d.k("owner").reference("Organization");
  if (r.pct(30)) d.k("location").reference("Location");
  if (r.pct(20)) d.s("url", "https://devices.example.org/" + d.ref_id());
  if (r.pct(40)) d.s("lotNumber", "L" + std::to_string(r.between(1000, 9999)));
  if (r.pct(40)) d.s("expirationDate", d.date_time(2024, 2030));
}

void specimen(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://lab.example.org/specimens");
  if (r.pct(50))
    d.k("accessionIdentifier").identifier("http://lab.example.org/accession", d.ref_id());
  d.status("status", {"available", "unavailable", "unsatisfactory"});
  d.k("type").simple_concept("http://terminology.hl7.org/CodeSystem/v2-0487", "BLD", "Whole blood");
  d.k("subject").reference("Patient");
  if (r.pct(50)) d.s("receivedTime", d.instant());
  if (r.pct(10)) d.references("parent", "Specimen", 1);
  if (r.pct(40)) d.references("request", "ServiceRequest", 1);
  d.o("collection", [&] {
    if (r.pct(60)) d.k("collector").reference("Practitioner");
    if (r.pct(70))
      d.s("collectedDateTime", d.date_time());
    else
      d.k("collectedPeriod").period();
    if (r.pct(40)) d.k("bodySite").cc(kBodySites);
  });
  if (r.pct(40))
    d.each("container", 1, [&](int) {
      d.identifiers("identifier", "http://lab.example.org/tubes");
      d.k("type").simple_concept(kSnomed, "702281005", "Evacuated blood collection tube");
    });
}

void related_person(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://hospital.example.org/related");
  d.b("active", true);
  d.k("patient").reference("Patient");
  d.a("relationship", [&] { d.cc(kRelationships); });
  d.names("name");
  d.telecoms("telecom");
  d.status("gender", {"male", "female"});
  if (r.pct(50)) d.s("birthDate", d.date(1940, 2010));
  if (r.pct(60)) d.addresses("address");
  if (r.pct(30)) d.k("period").period();
}

void composition(Doc& d, bool) {
  Rng& r = d.r;
  d.k("identifier").identifier("http://hospital.example.org/compositions", d.ref_id());
  d.status("status", {"final", "preliminary", "amended"});
  d.k("type").cc(kDocTypes);
  if (r.pct(40)) d.a("category", [&] { d.cc(kDocTypes); });
  d.k("subject").reference("Patient");
  if (r.pct(50)) d.k("encounter").reference("Encounter");
  d.s("date", d.date_time());
  d.references("author", "Practitioner", 1);
  d.s("title", "Discharge Summary");
  if (r.pct(40)) d.s("confidentiality", "N");
  if (r.pct(40))
    d.each("attester", 1, [&](int) {
      d.s("mode", "legal");
      d.s("time", d.date_time());
      d.k("party").reference("Practitioner");
    });
  if (r.pct(40)) d.k("custodian").reference("Organization");
  if (r.pct(10))
    d.each("relatesTo", 1, [&](int) {
      d.s("code", "replaces");
      d.k("targetReference").reference("Composition");
    });
  if (r.pct(40))
    d.each("event", 1, [&](int) {
      d.a("code", [&] { d.cc(kProcedures); });
      d.k("period").period();
      if (r.pct(50)) d.references("detail", "Observation", 1);
    });
  d.each("section", r.between(1, 3), [&](int i) {
    d.s("title", i == 0 ? "Reason for admission" : "Medications on discharge");
    d.k("code").simple_concept(
        kLoinc, i == 0 ? "29299-5" : "10183-2",
        i == 0 ? "Reason for visit Narrative" : "Hospital discharge medications Narrative");
    d.narrative("Section " + std::to_string(i + 1));
    d.references("entry", i == 0 ? "Condition" : "MedicationRequest", 3);
  });
}

void questionnaire_response(Doc& d, bool) {
  Rng& r = d.r;
  d.k("identifier").identifier("http://hospital.example.org/qr", d.ref_id());
  if (r.pct(20)) d.references("basedOn", "ServiceRequest", 1);
  if (r.pct(10)) d.references("partOf", "Procedure", 1);
  d.s("questionnaire", r.pct(50) ? "http://example.org/Questionnaire/phq-9|1.0"
                                 : "http://example.org/Questionnaire/intake");
  d.status("status", {"completed", "in-progress", "amended"});
  d.k("subject").reference("Patient");
  if (r.pct(40)) d.k("encounter").reference("Encounter");
  d.s("authored", d.date_time());
  if (r.pct(50)) d.k("author").reference("Practitioner");
  if (r.pct(40)) d.k("source").reference("Patient");
  d.each("item", r.between(1, 3), [&](int i) {
    d.s("linkId", std::to_string(i + 1));
    d.s("text", "Question " + std::to_string(i + 1));
    d.each("answer", 1, [&](int) {
      switch (r.below(4)) {
        case 0:
          d.b("valueBoolean", r.pct(50));
          break;
        case 1:
          d.n("valueInteger", std::to_string(r.between(0, 3)));
          break;
        case 2:
          d.s("valueString", r.pick(kNotes));
          break;
        default:
          d.k("valueCoding").coding(r.pick(kObsAnswers));
          break;
      }
    });
  });
}

void conformance_common(Doc& d, const char* kind, const std::string& name) {
  Rng& r = d.r;
  d.s("url", "http://example.org/fhir/" + std::string(kind) + "/" + name);
  if (r.pct(50)) d.identifiers("identifier", "urn:ietf:rfc:3986");
  d.s("version", std::to_string(r.between(1, 4)) + "." + std::to_string(r.below(10)));
  d.s("name", name);
  d.s("title", "The " + name + " " + kind);
  d.status("status", {"active", "draft", "retired"});
  d.s("date", d.date_time());
  d.s("publisher", r.pick(kOrgNames));
  if (r.pct(60)) d.s("description", "Defines " + name + ".");
  if (r.pct(30))
    d.each("useContext", 1, [&](int) {
      d.k("code").coding(
          {"http://terminology.hl7.org/CodeSystem/usage-context-type", "focus", "Clinical Focus"});
      d.k("valueCodeableConcept").cc(kConditions);
    });
  if (r.pct(30))
    d.a("jurisdiction", [&] { d.simple_concept("urn:iso:std:iso:3166", r.pick(kCountries)); });
}

void questionnaire(Doc& d, bool) {
  Rng& r = d.r;
  conformance_common(d, "Questionnaire", "Intake" + std::to_string(r.below(100)));
  if (r.pct(40))
    d.a("code", [&] { d.coding({kLoinc, "44249-1", "PHQ-9 quick depression assessment panel"}); });
  if (r.pct(30)) d.k("effectivePeriod").period();
  d.each("item", r.between(1, 3), [&](int i) {
    d.s("linkId", std::to_string(i + 1));
    d.s("text", "Question " + std::to_string(i + 1));
    d.status("type", {"boolean", "string", "choice", "integer"});
    if (r.pct(40)) d.a("code", [&] { d.coding(r.pick(kObsAnswers)); });
  });
}

void value_set(Doc& d, bool) {
  Rng& r = d.r;
  conformance_common(d, "ValueSet", "Conditions" + std::to_string(r.below(100)));
  d.o("compose", [&] {
    d.each("include", 1, [&](int) {
      d.s("system", kSnomed);
      d.each("concept", r.between(1, 3), [&](int) {
        const Code& c = r.pick(kConditions);
        d.s("code", c.code);
        d.s("display", c.display);
      });
    });
  });
  if (r.pct(30))
    d.o("expansion", [&] {
      d.s("identifier", "urn:uuid:" + d.uuid());
      d.s("timestamp", d.instant());
      d.each("contains", 1, [&](int) {
        d.s("system", kSnomed);
        d.s("code", "44054006");
      });
    });
}

void code_system(Doc& d, bool) {
  Rng& r = d.r;
  conformance_common(d, "CodeSystem", "LocalCodes" + std::to_string(r.below(100)));
  d.s("content", "complete");
  if (r.pct(20)) d.s("supplements", "http://snomed.info/sct");
  d.each("concept", r.between(1, 4), [&](int i) {
    d.s("code", "L" + std::to_string(i + 1));
    d.s("display", "Local code " + std::to_string(i + 1));
  });
}

void provenance(Doc& d, bool) {
  Rng& r = d.r;
  d.references("target", r.pct(50) ? "Observation" : "Patient", 3);
  if (r.pct(60))
    d.s("occurredDateTime", d.date_time());
  else
    d.k("occurredPeriod").period();
  d.s("recorded", d.instant());
  if (r.pct(30)) d.a("policy", [&] { d.w.string("http://example.org/policies/consent-1"); });
  if (r.pct(40)) d.k("location").reference("Location");
  if (r.pct(50))
    d.k("activity")
        .simple_concept("http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                        r.pct(50) ? "CREATE" : "UPDATE");
  d.each("agent", r.between(1, 2), [&](int) {
    d.k("type").simple_concept("http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                               r.pct(50) ? "author" : "transmitter");
    if (r.pct(30)) d.a("role", [&] { d.cc(kSpecialties); });
    d.k("who").reference(r.pct(70) ? "Practitioner" : "Organization");
    if (r.pct(30)) d.k("onBehalfOf").reference("Organization");
  });
  if (r.pct(30))
    d.each("entity", 1, [&](int) {
      d.s("role", "source");
      d.k("what").reference("DocumentReference");
    });
  if (r.pct(20))
    d.each("signature", 1, [&](int) {
      d.a("type", [&] {
        d.coding({"urn:iso-astm:E1762-95:2013", "1.2.840.10065.1.12.1.1", "Author's Signature"});
      });
      d.s("when", d.instant());
      d.k("who").reference("Practitioner");
    });
}

void task(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://hospital.example.org/tasks");
  if (r.pct(30)) d.references("basedOn", "ServiceRequest", 1);
  if (r.pct(20))
    d.k("groupIdentifier").identifier("http://hospital.example.org/taskgroups", d.ref_id());
  if (r.pct(10)) d.references("partOf", "Task", 1);
  d.status("status", {"requested", "accepted", "in-progress", "completed", "failed"});
  if (r.pct(30)) d.k("businessStatus").text_concept("waiting for specimen");
  d.status("intent", {"order", "plan", "proposal"});
  if (r.pct(40)) d.status("priority", {"routine", "urgent"});
  d.k("code").simple_concept("http://hl7.org/fhir/CodeSystem/task-code", "fulfill",
                             "Fulfill the focal request");
  if (r.pct(50)) d.s("description", "Collect blood sample");
  d.k("focus").reference("ServiceRequest");
  d.k("for").reference("Patient");
  if (r.pct(40)) d.k("encounter").reference("Encounter");
  if (r.pct(50)) d.k("executionPeriod").period();
  d.s("authoredOn", d.date_time());
  if (r.pct(60)) d.s("lastModified", d.date_time());
  d.k("requester").reference("Practitioner");
  if (r.pct(30)) d.a("performerType", [&] { d.cc(kSpecialties); });
  if (r.pct(50)) d.k("owner").reference("Organization");
  if (r.pct(30)) d.k("reasonCode").cc(kConditions);
  if (r.pct(20)) d.o("restriction", [&] { d.k("period").period(); });
  if (r.pct(30))
    d.each("input", 1, [&](int) {
      d.k("type").text_concept("comment");
      d.s("valueString", r.pick(kNotes));
    });
}

void consent(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://hospital.example.org/consents");
  d.status("status", {"active", "draft", "rejected", "inactive"});
  d.k("scope").simple_concept("http://terminology.hl7.org/CodeSystem/consentscope",
                              r.pct(50) ? "patient-privacy" : "treatment");
  d.a("category", [&] { d.simple_concept(kLoinc, "59284-0", "Patient Consent"); });
  d.k("patient").reference("Patient");
  d.s("dateTime", d.date_time());
  if (r.pct(50)) d.references("performer", "Patient", 1);
  if (r.pct(50)) d.references("organization", "Organization", 1);
  if (r.pct(40))
    d.k("sourceReference").reference("DocumentReference");
  else if (r.pct(30))
    d.k("sourceAttachment").attachment("application/pdf");
  if (r.pct(30)) d.each("policy", 1, [&](int) { d.s("uri", "http://example.org/policies/hipaa"); });
  if (r.pct(30))
    d.k("policyRule").simple_concept("http://terminology.hl7.org/CodeSystem/v3-ActCode", "OPTIN");
  d.o("provision", [&] {
    d.s("type", r.pct(50) ? "permit" : "deny");
    d.k("period").period();
    d.each("actor", 1, [&](int) {
      d.k("role").simple_concept("http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                 "PRCP");
      d.k("reference").reference("Organization");
    });
    d.a("action",
        [&] { d.simple_concept("http://terminology.hl7.org/CodeSystem/consentaction", "access"); });
    if (r.pct(30))
      d.a("securityLabel", [&] {
        d.coding({"http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "R", "restricted"});
      });
    if (r.pct(30))
      d.a("purpose", [&] {
        d.coding({"http://terminology.hl7.org/CodeSystem/v3-ActReason", "TREAT", "treatment"});
      });
    if (r.pct(30))
      d.each("data", 1, [&](int) {
        d.s("meaning", "related");
        d.k("reference").reference("Encounter");
      });
  });
}

void communication(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://hospital.example.org/messages");
  if (r.pct(20)) d.references("basedOn", "ServiceRequest", 1);
  if (r.pct(10)) d.references("partOf", "Procedure", 1);
  if (r.pct(10)) d.references("inResponseTo", "Communication", 1);
  d.status("status", {"completed", "in-progress", "stopped"});
  d.a("category", [&] {
    d.simple_concept("http://terminology.hl7.org/CodeSystem/communication-category",
                     "notification");
  });
  if (r.pct(30)) d.status("priority", {"routine", "urgent"});
  d.k("subject").reference("Patient");
  if (r.pct(30)) d.k("encounter").reference("Encounter");
  d.s("sent", d.date_time());
  if (r.pct(60)) d.s("received", d.date_time());
  d.references("recipient", "Practitioner", 2);
  d.k("sender").reference("Organization");
  if (r.pct(30)) d.a("reasonCode", [&] { d.cc(kConditions); });
  d.each("payload", 1, [&](int) { d.s("contentString", r.pick(kNotes)); });
}

void family_member_history(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://hospital.example.org/fmh");
  if (r.pct(20))
    d.a("instantiatesCanonical", [&] { d.w.string("http://example.org/fhir/Questionnaire/fmh"); });
  d.status("status", {"completed", "partial", "health-unknown"});
  d.k("patient").reference("Patient");
  if (r.pct(60)) d.s("date", d.date_time());
  if (r.pct(50)) d.s("name", std::string(r.pick(kGivens)) + " " + r.pick(kFamilies));
  d.k("relationship").cc(kRelationships);
  if (r.pct(60))
    d.k("sex").simple_concept("http://hl7.org/fhir/administrative-gender",
                              r.pct(50) ? "male" : "female");
  if (r.pct(40)) d.s("bornDate", d.date(1920, 2000));
  if (r.pct(20)) d.b("deceasedBoolean", true);
  d.each("condition", r.between(1, 2), [&](int) {
    d.k("code").cc(kConditions);
    if (r.pct(50)) d.k("onsetAge").age();
    if (r.pct(30)) d.k("outcome").text_concept("Recovered");
  });
}

void group(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://hospital.example.org/groups");
  d.b("active", true);
  d.status("type", {"person", "practitioner", "device"});
  d.b("actual", r.pct(70));
  if (r.pct(50)) d.k("code").cc(kConditions);
  d.s("name", "Cohort " + std::to_string(r.below(100)));
  int members = r.between(1, 4);
  d.n("quantity", std::to_string(members));
  if (r.pct(50)) d.k("managingEntity").reference("Organization");
  if (r.pct(50))
    d.each("characteristic", 1, [&](int) {
      d.k("code").simple_concept(kSnomed, "263495000", "Gender");
      d.k("valueCodeableConcept")
          .simple_concept("http://hl7.org/fhir/administrative-gender", "female");
      d.b("exclude", false);
    });
  d.each("member", members, [&](int) {
    d.k("entity").reference("Patient");
    if (r.pct(30)) d.k("period").period();
    if (r.pct(10)) d.b("inactive", true);
  });
}

void healthcare_service(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://hospital.example.org/services");
  d.b("active", true);
  d.k("providedBy").reference("Organization");
  d.a("category", [&] { d.cc(kSpecialties); });
  d.a("type", [&] { d.cc(kEncounterTypes); });
  d.a("specialty", [&] { d.cc(kSpecialties); });
  d.references("location", "Location", 2);
  d.s("name", "Cardiology outpatient clinic");
  if (r.pct(40)) d.s("comment", "Walk-ins welcome");
  d.telecoms("telecom");
  if (r.pct(30)) d.references("coverageArea", "Location", 1);
  if (r.pct(20)) d.each("eligibility", 1, [&](int) { d.k("code").text_concept("Adults only"); });
  if (r.pct(30)) d.a("characteristic", [&] { d.text_concept("wheelchair access"); });
  if (r.pct(20)) d.references("endpoint", "Endpoint", 1);
}

void schedule(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://hospital.example.org/schedules");
  d.b("active", r.pct(90));
  if (r.pct(40)) d.a("serviceCategory", [&] { d.cc(kSpecialties); });
  d.a("serviceType", [&] { d.cc(kEncounterTypes); });
  if (r.pct(40)) d.a("specialty", [&] { d.cc(kSpecialties); });
  d.references("actor", r.pct(60) ? "Practitioner" : "Location", 2);
  d.k("planningHorizon").period();
}

void slot(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://hospital.example.org/slots");
  if (r.pct(40)) d.a("serviceCategory", [&] { d.cc(kSpecialties); });
  d.a("serviceType", [&] { d.cc(kEncounterTypes); });
  if (r.pct(40)) d.a("specialty", [&] { d.cc(kSpecialties); });
  if (r.pct(40))
    d.k("appointmentType")
        .simple_concept("http://terminology.hl7.org/CodeSystem/v2-0276", "WALKIN");
  d.k("schedule").reference("Schedule");
  d.status("status", {"free", "busy", "busy-unavailable"});
  std::string day = d.full_date(2018, 2025);
  int hour = r.between(8, 16);
  d.s("start", day + "T" + pad(hour, 2) + ":00:00Z");
  d.s("end", day + "T" + pad(hour, 2) + ":15:00Z");
}

void endpoint(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://hospital.example.org/endpoints");
  d.status("status", {"active", "off", "error"});
  d.k("connectionType")
      .coding({"http://terminology.hl7.org/CodeSystem/endpoint-connection-type", "hl7-fhir-rest",
               "HL7 FHIR"});
  d.s("name", "FHIR endpoint " + std::to_string(r.below(100)));
  d.k("managingOrganization").reference("Organization");
  d.a("payloadType", [&] { d.text_concept("any"); });
  d.a("payloadMimeType", [&] { d.w.string("application/fhir+json"); });
  d.s("address", "https://fhir.example.org/r4/" + d.ref_id());
}

void flag(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://hospital.example.org/flags");
  d.status("status", {"active", "inactive"});
  d.a("category",
      [&] { d.simple_concept("http://terminology.hl7.org/CodeSystem/flag-category", "safety"); });
  d.k("code").text_concept(r.pct(50) ? "Patient has a big dog" : "Fall risk");
  d.k("subject").reference("Patient");
  d.k("period").period();
  if (r.pct(40)) d.k("encounter").reference("Encounter");
  if (r.pct(40)) d.k("author").reference("Practitioner");
}

void list(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://hospital.example.org/lists");
  d.status("status", {"current", "retired"});
  d.s("mode", "working");
  d.s("title", "Problem list");
  d.k("code").simple_concept(kLoinc, "11450-4", "Problem list - Reported");
  d.k("subject").reference("Patient");
  if (r.pct(30)) d.k("encounter").reference("Encounter");
  d.s("date", d.date_time());
  if (r.pct(50)) d.k("source").reference("Practitioner");
  if (r.pct(20)) d.k("emptyReason").text_concept("nil known");
  d.each("entry", r.between(1, 3), [&](int) {
    if (r.pct(30)) d.b("deleted", false);
    if (r.pct(50)) d.s("date", d.date_time());
    d.k("item").reference("Condition");
  });
  d.notes();
}

void risk_assessment(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://hospital.example.org/risk");
  d.status("status", {"final", "preliminary"});
  if (r.pct(50)) d.k("method").text_concept("Framingham");
  d.k("code").text_concept("Cardiovascular risk");
  d.k("subject").reference("Patient");
  if (r.pct(40)) d.k("encounter").reference("Encounter");
  if (r.pct(70))
    d.s("occurrenceDateTime", d.date_time());
  else
    d.k("occurrencePeriod").period();
  if (r.pct(50)) d.k("condition").reference("Condition");
  if (r.pct(50)) d.k("performer").reference("Practitioner");
  d.each("prediction", 1, [&](int) {
    d.k("outcome").cc(kConditions);
    if (r.pct(70))
      d.n("probabilityDecimal", "0." + pad(r.between(1, 99), 2));
    else
      d.k("probabilityRange").range(1, 20, "%");
    if (r.pct(30)) d.s("rationale", "Based on lipid panel");
  });
}

void episode_of_care(Doc& d, bool) {
  Rng& r = d.r;
  d.identifiers("identifier", "http://hospital.example.org/episodes");
  d.status("status", {"active", "finished", "planned"});
  d.a("type", [&] {
    d.simple_concept("http://terminology.hl7.org/CodeSystem/episodeofcare-type", "hacc");
  });
  if (r.pct(40))
    d.each("diagnosis", 1, [&](int) {
      d.k("condition").reference("Condition");
      d.n("rank", "1");
    });
  d.k("patient").reference("Patient");
  d.k("managingOrganization").reference("Organization");
  d.k("period").period();
  if (r.pct(30)) d.references("referralRequest", "ServiceRequest", 1);
  if (r.pct(50)) d.k("careManager").reference("Practitioner");
}

void bundle(Doc& d, bool nested);

struct TypeInfo {
  const char* name;
  int weight;
  void (*write)(Doc&, bool);
};

const std::array<TypeInfo, 45> kTypes{{
    {"Observation", 300, observation},
    {"Patient", 80, patient},
    {"Encounter", 80, encounter},
    {"Condition", 60, condition},
    {"MedicationRequest", 60, medication_request},
    {"Procedure", 40, procedure},
    {"DiagnosticReport", 40, diagnostic_report},
    {"Immunization", 30, immunization},
    {"AllergyIntolerance", 20, allergy_intolerance},
    {"Practitioner", 20, practitioner},
    {"Organization", 10, organization},
    {"DocumentReference", 20, document_reference},
    {"Claim", 15, claim},
    {"ExplanationOfBenefit", 15, explanation_of_benefit},
    {"MedicationStatement", 15, medication_statement},
    {"MedicationAdministration", 10, medication_administration},
    {"MedicationDispense", 10, medication_dispense},
    {"Medication", 8, medication},
    {"ServiceRequest", 15, service_request},
    {"CarePlan", 10, care_plan},
    {"CareTeam", 8, care_team},
    {"Goal", 8, goal},
    {"Appointment", 12, appointment},
    {"Coverage", 8, coverage},
    {"Device", 6, device},
    {"Specimen", 8, specimen},
    {"RelatedPerson", 6, related_person},
    {"Location", 6, location},
    {"PractitionerRole", 8, practitioner_role},
    {"Composition", 5, composition},
    {"QuestionnaireResponse", 8, questionnaire_response},
    {"Questionnaire", 3, questionnaire},
    {"ValueSet", 2, value_set},
    {"CodeSystem", 2, code_system},
    {"Provenance", 10, provenance},
    {"Task", 6, task},
    {"Consent", 4, consent},
    {"Communication", 5, communication},
    {"FamilyMemberHistory", 4, family_member_history},
    {"Group", 2, group},
    {"HealthcareService", 3, healthcare_service},
    {"Schedule", 3, schedule},
    {"Slot", 4, slot},
    {"Endpoint", 2, endpoint},
    {"Bundle", 10, bundle},
}};
// Flag, List, RiskAssessment and EpisodeOfCare are generated too, at low weight (below).
const std::array<TypeInfo, 4> kRareTypes{{
    {"Flag", 2, flag},
    {"List", 2, list},
    {"RiskAssessment", 2, risk_assessment},
    {"EpisodeOfCare", 3, episode_of_care},
}};

const TypeInfo* find_type(std::string_view name) {
  for (const auto& t : kTypes)
    if (name == t.name) return &t;
  for (const auto& t : kRareTypes)
    if (name == t.name) return &t;
  return nullptr;
}

// Writes `type` with id `id` as one JSON object (at the writer's current position).
void write_resource(Rng& r, JsonWriter& w, const TypeInfo& type, std::string_view id, bool nested) {
  Doc d(r, w);
  w.object([&] {
    d.s("resourceType", type.name);
    d.s("id", id);
    d.meta();
    if (r.pct(nested ? 5 : 20)) d.narrative(std::string(type.name) + " " + std::string(id));
    d.generic_extension();
    type.write(d, nested);
  });
}

void bundle(Doc& d, bool) {
  Rng& r = d.r;
  int kind = r.below(4);
  const char* bundle_type = kind == 0   ? "collection"
                            : kind == 1 ? "searchset"
                            : kind == 2 ? "transaction"
                                        : "document";
  if (r.pct(50) || kind == 3)
    d.k("identifier").identifier("urn:ietf:rfc:3986", "urn:uuid:" + d.uuid());
  d.s("type", bundle_type);
  d.s("timestamp", d.instant());
  int count = r.between(1, 4);
  if (kind == 1) d.n("total", std::to_string(count + r.below(50)));
  if (kind == 1)
    d.each("link", 1, [&](int) {
      d.s("relation", "self");
      d.s("url", "https://fhir.example.org/r4/Observation?patient=" + d.ref_id());
    });
  d.a("entry", [&] {
    for (int i = 0; i < count; ++i) {
      const TypeInfo* t = nullptr;
      if (kind == 3 && i == 0) {
        t = find_type("Composition");
      } else {
        do {
          t = &kTypes[static_cast<size_t>(r.below(static_cast<int>(kTypes.size())))];
        } while (std::string_view(t->name) == "Bundle");
      }
      std::string id = d.uuid();
      d.w.object([&] {
        d.s("fullUrl", "urn:uuid:" + id);
        d.k("resource");
        write_resource(r, d.w, *t, id, true);
        if (kind == 1) d.o("search", [&] { d.s("mode", "match"); });
        if (kind == 2)
          d.o("request", [&] {
            d.s("method", "POST");
            d.s("url", t->name);
          });
      });
    }
  });
}

int total_weight() {
  int sum = 0;
  for (const auto& t : kTypes) sum += t.weight;
  for (const auto& t : kRareTypes) sum += t.weight;
  return sum;
}

}  // namespace

Generator::Generator(uint64_t seed) : state_(seed) {}

std::string Generator::resource(std::string_view type, std::string_view id) {
  const TypeInfo* info = find_type(type);
  if (!info)
    throw std::invalid_argument("corpus::Generator: resource type '" + std::string(type) +
                                "' is not generated (see Generator::types())");
  // Each resource draws from its own stream, derived from the generator's sequence and from the
  // type and id, so that the same calls give the same resources.
  Rng r(splitmix(state_) ^ fnv1a(id, fnv1a(type)));
  JsonWriter w;
  write_resource(r, w, *info, id, false);
  return w.take();
}

std::string_view Generator::random_type() {
  static const int kTotal = total_weight();
  int x = static_cast<int>(splitmix(state_) % static_cast<uint64_t>(kTotal));
  for (const auto& t : kTypes) {
    if (x < t.weight) return t.name;
    x -= t.weight;
  }
  for (const auto& t : kRareTypes) {
    if (x < t.weight) return t.name;
    x -= t.weight;
  }
  return kTypes[0].name;
}

const std::vector<std::string>& Generator::types() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> names;
    for (const auto& t : kTypes) names.emplace_back(t.name);
    for (const auto& t : kRareTypes) names.emplace_back(t.name);
    return names;
  }();
  return kNames;
}

}  // namespace fhirshift::corpus
