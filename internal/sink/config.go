package sink

import (
	"fmt"
	"strings"

	"github.com/unified-streaming-etl/etl/internal/dlq"
)

// EnvTableName is the environment variable that names the OrderEnriched
// table; the stack sets it on the function, with dlq.EnvURL.
const EnvTableName = "TABLE_NAME"

// ConfigFromEnv reads the configuration the stack sets, as
// enrich.ConfigFromEnv does for the processor. getenv is os.Getenv in
// production. DLQURL is for main, which builds the dead-letter sender from
// it; the handler ignores it.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := Config{
		TableName: strings.TrimSpace(getenv(EnvTableName)),
		DLQURL:    strings.TrimSpace(getenv(dlq.EnvURL)),
		Source:    strings.TrimSpace(getenv("AWS_LAMBDA_FUNCTION_NAME")),
	}
	if cfg.TableName == "" {
		return Config{}, fmt.Errorf("sink configuration: %s is required", EnvTableName)
	}
	if cfg.Source == "" {
		cfg.Source = DefaultSource
	}
	return cfg, nil
}
