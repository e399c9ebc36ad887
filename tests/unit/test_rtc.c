#include "../unit/unit.h"
int main(void) { return UNIT_RESULT(); }
