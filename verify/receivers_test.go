package verify_test

import (
	"reflect"
	"testing"

	"github.com/stairhook/stairhook/verify"
)

// Each exported type has one kind of method receiver: the types used
// through pointers have no value methods, the small value types have no
// pointer-only ones. A mix (Verifier.String on the value, the rest on the
// pointer) makes the method set of a value surprising.
func TestOneReceiverKindPerType(t *testing.T) {
	pointerTypes := []any{verify.Verifier{}, verify.Signer{}, verify.MemoryStore{}, verify.SQLStore{}, verify.BodyBudget{}}
	valueTypes := []any{verify.Secret{}, verify.State(0)}
	for _, x := range pointerTypes {
		typ := reflect.TypeOf(x)
		if n := typ.NumMethod(); n != 0 {
			var names []string
			for i := range n {
				names = append(names, typ.Method(i).Name)
			}
			t.Errorf("%v has pointer receivers but also value ones: %v", typ, names)
		}
	}
	for _, x := range valueTypes {
		typ := reflect.TypeOf(x)
		if v, p := typ.NumMethod(), reflect.PointerTo(typ).NumMethod(); v != p {
			t.Errorf("%v has %d value methods and %d pointer ones", typ, v, p)
		}
	}
}
