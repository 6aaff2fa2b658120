#include <gtest/gtest.h>

#include "fhirpath/expression.h"

namespace fhirshift::fhirpath {
namespace {

const char* kPatient = R"({"resourceType":"Patient","id":"p1",
  "extension":[{"url":"http://x.org/birthsex","valueCode":"F"},{"url":"http://x.org/other","valueString":"o"}],
  "identifier":[{"system":"http://mrn","value":"123"},{"system":"http://ssn","value":"999"}],
  "name":[{"family":"Müller","given":["Anna","Maria"]},{"family":"Müller","given":["Anna","Maria"]},{"family":"Smith"}],
  "telecom":[{"system":"phone","value":"555"},{"system":"email","value":"a@b.org"}],
  "deceasedDateTime":"2020-01",
  "generalPractitioner":[{"reference":"Practitioner/7"},{"reference":"#c1"},
    {"reference":"https://x.org/fhir/Organization/5/_history/2"},{"identifier":{"value":"x"}},
    {"reference":"urn:uuid:1234"}],
  "contained":[{"resourceType":"Practitioner","id":"c1","name":[{"family":"Inner"}]}]})";

const char* kObservation = R"({"resourceType":"Observation","id":"o1","status":"final",
  "code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}],"text":"Heart rate"},
  "valueQuantity":{"value":1.50,"unit":"kg"},"effectivePeriod":{"start":"2020"},
  "component":[{"code":{"text":"a"},"valueCodeableConcept":{"text":"x"}},{"code":{"text":"b"},"valueQuantity":{"value":2}}]})";

std::vector<std::string> eval(const char* json, const std::string& expr, const char* type) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.parse(std::string(json));
  EvalState state;
  std::vector<std::string> out;
  auto compiled = Expression::compile(expr, type);  // results may point into it (literals)
  for (const auto& v : compiled->evaluate(doc, state)) out.push_back(to_json(v));
  return out;
}
std::vector<std::string> pat(const std::string& e) {
  return eval(kPatient, e, "Patient");
}
std::vector<std::string> obs(const std::string& e) {
  return eval(kObservation, e, "Observation");
}
using V = std::vector<std::string>;

TEST(FhirPath, PathsTypeNamesAndUnionDeduplication) {
  EXPECT_EQ(pat("Patient.id"), V{"\"p1\""});
  EXPECT_EQ(pat("Resource.id"), V{"\"p1\""});
  EXPECT_EQ(pat("Practitioner.name"), V{});
  EXPECT_EQ(pat("Patient.name.given"), (V{"\"Anna\"", "\"Maria\"", "\"Anna\"", "\"Maria\""}));
  EXPECT_EQ(pat("Patient.name.family | Practitioner.name.family"), (V{"\"Müller\"", "\"Smith\""}));
  EXPECT_EQ(pat("name.family.first()"), V{"\"Müller\""});
  EXPECT_EQ(pat("Patient.name[2].family"), V{"\"Smith\""});
  EXPECT_EQ(pat("Patient.identifier.where(system='http://ssn').value"), V{"\"999\""});
  EXPECT_EQ(pat("Patient.telecom.where(system='email')"),
            V{R"({"system":"email","value":"a@b.org"})"});
}

TEST(FhirPath, ChoiceTypesOfTypeIsAs) {
  EXPECT_EQ(obs("Observation.value"), V{R"({"value":1.5,"unit":"kg"})"});
  EXPECT_EQ(obs("Observation.value.ofType(Quantity).value"), V{"1.5"});
  EXPECT_EQ(obs("(Observation.value as Quantity).unit"), V{"\"kg\""});
  EXPECT_EQ(obs("Observation.value.ofType(CodeableConcept)"), V{});
  EXPECT_EQ(obs("Observation.value is Quantity"), V{"true"});
  EXPECT_EQ(obs("Observation.effective.ofType(Period).start"), V{"\"2020\""});
  EXPECT_EQ(obs("Observation.component.value.ofType(CodeableConcept).text"), V{"\"x\""});
  EXPECT_EQ(obs("Observation.component.value.ofType(Quantity).value"), V{"2"});
  EXPECT_EQ(pat("Patient.deceased.ofType(dateTime)"), V{"\"2020-01\""});
  EXPECT_EQ(pat("Patient.deceased.exists() and Patient.deceased != false"), V{"true"});
}

TEST(FhirPath, ResolveByReferenceTypeAndContained) {
  EXPECT_EQ(pat("Patient.generalPractitioner.where(resolve() is Practitioner).reference"),
            (V{"\"Practitioner/7\"", "\"#c1\""}));
  EXPECT_EQ(pat("Patient.generalPractitioner.where(resolve() is Organization).reference"),
            V{"\"https://x.org/fhir/Organization/5/_history/2\""});
  EXPECT_EQ(pat("Patient.generalPractitioner.resolve().name.family"), V{"\"Inner\""});
}

TEST(FhirPath, FunctionsAndOperators) {
  EXPECT_EQ(pat("Patient.extension('http://x.org/birthsex').value"), V{"\"F\""});
  EXPECT_EQ(pat("Patient.name.exists()"), V{"true"});
  EXPECT_EQ(pat("Patient.photo.empty()"), V{"true"});
  EXPECT_EQ(pat("Patient.name.count()"), V{"3"});
  EXPECT_EQ(pat("Patient.name.given.distinct()"), (V{"\"Anna\"", "\"Maria\""}));
  EXPECT_EQ(pat("Patient.identifier.value.first() = '123'"), V{"true"});
  EXPECT_EQ(pat("Patient.gender = 'x'"), V{});
  EXPECT_EQ(pat("Patient.name.family.first().startsWith('Mü') and true"), V{"true"});
  EXPECT_EQ(pat("Patient.name.where(given.exists(startsWith('Ma'))).count()"), V{"2"});
  EXPECT_EQ(pat("iif(Patient.active.exists(), 'a', 'b')"), V{"\"b\""});
  EXPECT_EQ(pat("1 + 2 * 3"), V{"7"});
  EXPECT_EQ(pat("'a' & 'b'"), V{"\"ab\""});
  EXPECT_EQ(pat("(true or {}) and (false implies false)"), V{"true"});
  EXPECT_EQ(pat("Patient.name.select(given.first())"), (V{"\"Anna\"", "\"Anna\""}));
}

TEST(FhirPath, OddDataIsAnEvaluationErrorNeverACrash) {
  const char* odd = R"({"resourceType":"Observation","id":"o","code":"not-an-object",
    "status":{"oops":1},"category":[[{"text":"nested"}]]})";
  EXPECT_THROW(eval(odd, "Observation.code", "Observation"), EvaluationError);
  EXPECT_THROW(eval(odd, "Observation.status", "Observation"), EvaluationError);
  EXPECT_THROW(eval(odd, "Observation.category", "Observation"), EvaluationError);
  EXPECT_THROW(eval(kPatient, "Patient.name.family.single()", "Patient"), EvaluationError);
  EXPECT_THROW(eval(kPatient, "Patient.name.family.startsWith('M')", "Patient"), EvaluationError);
}

TEST(FhirPath, UnsupportedConstructsAreCompileErrors) {
  EXPECT_THROW(Expression::compile("Patient.name.descendants()", "Patient"), CompileError);
  EXPECT_THROW(Expression::compile("Patient.name.", "Patient"), CompileError);
  EXPECT_THROW(Expression::compile("Patient.name.ofType(NoSuchType)", "Patient"), CompileError);
  try {
    Expression::compile("Patient.name.frobnicate()", "Patient");
    FAIL();
  } catch (const CompileError& e) {
    EXPECT_NE(std::string(e.what()).find("frobnicate"), std::string::npos) << e.what();
  }
}

// Found by fuzz/fuzz_fhirpath: a \u escape without four hexadecimal digits (there: "\usdCo")
// threw std::invalid_argument from std::stoul, and a number literal beyond a double would have
// thrown std::out_of_range from std::stod; both are syntax errors of the expression.
TEST(FhirPath, BadEscapesAndNumbersAreCompileErrors) {
  const std::vector<std::string> bad_ones = {
      R"(Patient.name.where(family = '\uZZZZ'))", R"(Patient.name.where(family = '\usdCo'))",
      R"(Patient.name.where(family = '\u12'))",   R"(Patient.name.where(family = '\u-123'))",
      R"(Patient.name.where(family = '\u 123'))", R"(Patient.name.where(family = '\uD83D'))",
      R"(Patient.name.where(family = '\uDE00x'))", R"(Patient.name.where(family = '\uD83D\u0041'))",
      "Patient.name.take(1" + std::string(400, '0') + ")"};
  for (const auto& bad : bad_ones) EXPECT_THROW(Expression::compile(bad, "Patient"), CompileError) << bad;
  EXPECT_EQ(pat(R"('M\u00fcller')"), V{"\"M\u00fcller\""});
  EXPECT_EQ(pat(R"('\uD83D\uDE00')"), V{"\"\U0001F600\""});
}

TEST(FhirPath, AComputedRegularExpressionThatIsNotOneIsAnEvaluationError) {
  EXPECT_THROW(pat("Patient.id.matches(Patient.id + '(')"), EvaluationError);
}

}  // namespace
}  // namespace fhirshift::fhirpath
