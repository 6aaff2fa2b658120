#include "dashboard/pages.h"

#include "dashboard/cutover_page.h"
#include "dashboard/migrate_page.h"

namespace fhirshift::dashboard {

std::string_view migrate_page() {
  return embedded::k_migrate_page;
}
std::string_view cutover_page() {
  return embedded::k_cutover_page;
}

}  // namespace fhirshift::dashboard
