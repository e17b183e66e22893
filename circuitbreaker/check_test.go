package circuitbreaker

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
)

// checker holds the few assertions the older tests use, written when
// testify could not yet be built in this module (gate_test.go uses its
// require); must stops the test at a failure, check goes on.
type checker struct{ fatal bool }

var (
	must  = checker{fatal: true}
	check = checker{}
)

func (c checker) fail(t *testing.T, msg []any, format string, args ...any) {
	t.Helper()
	s := fmt.Sprintf(format, args...)
	if len(msg) > 0 {
		s = fmt.Sprintf(fmt.Sprint(msg[0]), msg[1:]...) + ": " + s
	}
	if c.fatal {
		t.Fatal(s)
	}
	t.Error(s)
}

func (c checker) Equal(t *testing.T, want, got any, msg ...any) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		c.fail(t, msg, "got %v, want %v", got, want)
	}
}

func (c checker) True(t *testing.T, v bool, msg ...any) {
	t.Helper()
	if !v {
		c.fail(t, msg, "got false, want true")
	}
}

func (c checker) False(t *testing.T, v bool, msg ...any) {
	t.Helper()
	if v {
		c.fail(t, msg, "got true, want false")
	}
}

func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface, reflect.Func, reflect.Chan:
		return rv.IsNil()
	}
	return false
}

func (c checker) Nil(t *testing.T, v any, msg ...any) {
	t.Helper()
	if !isNil(v) {
		c.fail(t, msg, "got %v, want nil", v)
	}
}

func (c checker) NotNil(t *testing.T, v any, msg ...any) {
	t.Helper()
	if isNil(v) {
		c.fail(t, msg, "got nil")
	}
}

func (c checker) NoError(t *testing.T, err error, msg ...any) {
	t.Helper()
	if err != nil {
		c.fail(t, msg, "unexpected error: %v", err)
	}
}

func (c checker) ErrorIs(t *testing.T, err, target error, msg ...any) {
	t.Helper()
	if !errors.Is(err, target) {
		c.fail(t, msg, "error %v is not %v", err, target)
	}
}

func (c checker) Len(t *testing.T, v any, n int, msg ...any) {
	t.Helper()
	if l := reflect.ValueOf(v).Len(); l != n {
		c.fail(t, msg, "length %d, want %d", l, n)
	}
}

func (c checker) Empty(t *testing.T, v any, msg ...any) {
	t.Helper()
	c.Len(t, v, 0, msg...)
}

func (c checker) Zero(t *testing.T, v any, msg ...any) {
	t.Helper()
	if !reflect.ValueOf(v).IsZero() {
		c.fail(t, msg, "got %v, want zero", v)
	}
}

func (c checker) Panics(t *testing.T, f func(), msg ...any) {
	t.Helper()
	defer func() {
		if recover() == nil {
			c.fail(t, msg, "did not panic")
		}
	}()
	f()
}
