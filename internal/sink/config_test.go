package sink

import (
	"strings"
	"testing"
)

func TestConfigFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	t.Run("the table, queue and function name are read", func(t *testing.T) {
		cfg, err := ConfigFromEnv(env(map[string]string{
			"TABLE_NAME": " OrderEnriched ", "DLQ_URL": "https://sqs/q", "AWS_LAMBDA_FUNCTION_NAME": "Sink",
		}))
		if err != nil || cfg.TableName != "OrderEnriched" || cfg.DLQURL != "https://sqs/q" || cfg.Source != "Sink" {
			t.Errorf("config %+v, error %v", cfg, err)
		}
	})
	t.Run("the queue is optional and the source has a default", func(t *testing.T) {
		cfg, err := ConfigFromEnv(env(map[string]string{"TABLE_NAME": "OrderEnriched"}))
		if err != nil || cfg.DLQURL != "" || cfg.Source != DefaultSource {
			t.Errorf("config %+v, error %v", cfg, err)
		}
	})
	t.Run("a missing table is refused, naming the variable", func(t *testing.T) {
		if _, err := ConfigFromEnv(env(map[string]string{"TABLE_NAME": " "})); err == nil || !strings.Contains(err.Error(), "TABLE_NAME is required") {
			t.Errorf("error %v, want TABLE_NAME is required", err)
		}
	})
}
