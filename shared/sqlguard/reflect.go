package sqlguard

import (
	"reflect"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The walker reaches every message-typed field of every parse-tree node
// generically, so that a field it does not know about is still walked (and
// any node in it checked). Going through protoreflect's Range for each node
// boxed every field into a protoreflect.Value and cost about a third of a
// parse; instead, the message-typed fields of each generated Go struct are
// listed once (a typePlan) and read with Go reflection, which does not
// allocate. TestPlansCoverDescriptors proves that every plan holds exactly
// the message fields of the protobuf descriptor.

type fieldKind uint8

const (
	kindMessage fieldKind = iota + 1 // *T
	kindList                         // []*T
	kindOneof                        // oneof wrapper interface holding a *T
)

type fieldPlan struct {
	name  protoreflect.Name // the protobuf field name, e.g. with_clause
	index int
	kind  fieldKind
}

type typePlan struct {
	name     protoreflect.Name // the message name, e.g. SelectStmt
	fields   []fieldPlan
	location int // index of the int32 location field, or -1
}

var (
	plans       sync.Map // reflect.Type (pointer) -> *typePlan
	messageType = reflect.TypeFor[proto.Message]()
)

func isMessagePtr(t reflect.Type) bool {
	return t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct && t.Implements(messageType)
}

// planOf returns the plan of a generated message type, building it once.
func planOf(m proto.Message) *typePlan {
	t := reflect.TypeOf(m)
	if p, ok := plans.Load(t); ok {
		return p.(*typePlan)
	}
	p := &typePlan{name: m.ProtoReflect().Descriptor().Name(), location: -1}
	st := t.Elem()
	for i := 0; i < st.NumField(); i++ {
		f := st.Field(i)
		if !f.IsExported() {
			continue
		}
		name := protoreflect.Name(tagName(f.Tag.Get("protobuf")))
		switch {
		case f.Tag.Get("protobuf_oneof") != "":
			p.fields = append(p.fields, fieldPlan{name: protoreflect.Name(f.Tag.Get("protobuf_oneof")), index: i, kind: kindOneof})
		case isMessagePtr(f.Type):
			p.fields = append(p.fields, fieldPlan{name: name, index: i, kind: kindMessage})
		case f.Type.Kind() == reflect.Slice && isMessagePtr(f.Type.Elem()):
			p.fields = append(p.fields, fieldPlan{name: name, index: i, kind: kindList})
		case name == fLocation && f.Type.Kind() == reflect.Int32:
			p.location = i
		}
	}
	plans.Store(t, p)
	return p
}

// tagName extracts name=... from a protobuf struct tag.
func tagName(tag string) string {
	for _, part := range strings.Split(tag, ",") {
		if n, ok := strings.CutPrefix(part, "name="); ok {
			return n
		}
	}
	return ""
}

// eachChild calls fn for every set message inside m (one level down), except
// in the fields named in skip. It stops when fn returns false.
func eachChild(m proto.Message, skip []protoreflect.Name, fn func(proto.Message) bool) {
	p := planOf(m)
	v := reflect.ValueOf(m).Elem()
outer:
	for _, f := range p.fields {
		for _, s := range skip {
			if f.name == s {
				continue outer
			}
		}
		fv := v.Field(f.index)
		switch f.kind {
		case kindMessage:
			if !fv.IsNil() && !fn(fv.Interface().(proto.Message)) {
				return
			}
		case kindList:
			for i := 0; i < fv.Len(); i++ {
				if e := fv.Index(i); !e.IsNil() && !fn(e.Interface().(proto.Message)) {
					return
				}
			}
		case kindOneof:
			if inner, ok := oneofValue(fv); ok && !fn(inner) {
				return
			}
		}
	}
}

// oneofValue unwraps a oneof interface field (e.g. Node.Node holding a
// *Node_SelectStmt{SelectStmt: ...}) into the message it holds.
func oneofValue(fv reflect.Value) (proto.Message, bool) {
	if fv.IsNil() {
		return nil, false
	}
	w := fv.Elem() // *Node_SelectStmt
	if w.Kind() != reflect.Pointer || w.IsNil() || w.Elem().NumField() != 1 {
		return nil, false
	}
	inner := w.Elem().Field(0)
	if inner.Kind() != reflect.Pointer || inner.IsNil() {
		return nil, false
	}
	m, ok := inner.Interface().(proto.Message)
	return m, ok
}

// locOf is the byte offset in a node's location field, or -1.
func locOf(m proto.Message) int32 {
	p := planOf(m)
	if p.location < 0 {
		return -1
	}
	return int32(reflect.ValueOf(m).Elem().Field(p.location).Int())
}
