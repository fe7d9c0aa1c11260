// Everything a Sabot program needs: the DataStream API, expressions, sources and sinks.
#pragma once

#include "sabot/api/environment.h"
#include "sabot/columnar/builder.h"
#include "sabot/columnar/record_batch.h"
#include "sabot/compute/expression.h"
