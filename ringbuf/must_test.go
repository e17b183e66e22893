package ringbuf

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// must holds the test assertions; each failure stops the test. (testify is
// in go.mod but its yaml dependency is not in go.sum, so it cannot build.)
var must assertions

type assertions struct{}

func msg(args []any) string {
	if len(args) == 0 {
		return ""
	}
	if f, ok := args[0].(string); ok {
		return ": " + fmt.Sprintf(f, args[1:]...)
	}
	return ": " + fmt.Sprint(args...)
}

func (assertions) NoError(t testing.TB, err error, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v%s", err, msg(args))
	}
}

func (assertions) ErrorIs(t testing.TB, err, target error, args ...any) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want one matching %v%s", err, target, msg(args))
	}
}

func (assertions) ErrorAs(t testing.TB, err error, target any, args ...any) {
	t.Helper()
	if !errors.As(err, target) {
		t.Fatalf("error %v (%T), want one matching %T%s", err, err, target, msg(args))
	}
}

func (assertions) ErrorContains(t testing.TB, err error, s string, args ...any) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), s) {
		t.Fatalf("error %v, want one containing %q%s", err, s, msg(args))
	}
}

func (assertions) Equal(t testing.TB, want, got any, args ...any) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("got %#v, want %#v%s", got, want, msg(args))
	}
}

func (assertions) True(t testing.TB, ok bool, args ...any) {
	t.Helper()
	if !ok {
		t.Fatalf("condition false%s", msg(args))
	}
}

func (assertions) Panics(t testing.TB, f func(), args ...any) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Fatalf("no panic%s", msg(args))
		}
	}()
	f()
}
