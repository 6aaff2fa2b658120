#include <iostream>

#include "commands.h"

namespace fhirshift::cli {

// Placeholder until issue #6 lands: the subcommand exists so --help lists it.
void add_verify(CLI::App& app, Action& action) {
  auto* sub = app.add_subcommand("verify", "(not implemented yet: issue #6)");
  sub->allow_extras();
  sub->callback([&action] {
    action = [] {
      std::cerr << "fhirshift verify: not implemented yet (issue #6)\n";
      return kExitFailure;
    };
  });
}

}  // namespace fhirshift::cli
