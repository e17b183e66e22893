package risk

import (
	"errors"
	"reflect"
	"testing"
)

// The module's go.sum lacks testify's own dependencies, so these few
// assertions stand in for testify/require.

func eq(t testing.TB, want, got any, msg ...any) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("want %v, got %v %v", want, got, msg)
	}
}

func isZero(t testing.TB, got any, msg ...any) {
	t.Helper()
	if !reflect.ValueOf(got).IsZero() {
		t.Fatalf("want zero, got %v %v", got, msg)
	}
}

func truth(t testing.TB, ok bool, msg ...any) {
	t.Helper()
	if !ok {
		t.Fatalf("assertion failed %v", msg)
	}
}

func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func isErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("want error wrapping %v, got %v", target, err)
	}
}

func panics(t testing.TB, f func(), msg ...any) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Fatalf("did not panic %v", msg)
		}
	}()
	f()
}
