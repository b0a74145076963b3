package sqlguard

import (
	"slices"
	"testing"

	pg "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// TestPlansCoverDescriptors proves that the Go-reflection plans used by the
// walker reach every message-typed field of every pg_query message, as the
// protobuf descriptors define them: no field can be skipped.
func TestPlansCoverDescriptors(t *testing.T) {
	fd := (&pg.ParseResult{}).ProtoReflect().Descriptor().ParentFile()
	msgs := fd.Messages()
	if msgs.Len() < 200 {
		t.Fatalf("want the whole pg_query schema, got %d messages", msgs.Len())
	}
	for i := 0; i < msgs.Len(); i++ {
		md := msgs.Get(i)
		mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
		if err != nil {
			t.Fatalf("%s: %v", md.FullName(), err)
		}
		var want []string
		fields := md.Fields()
		for j := 0; j < fields.Len(); j++ {
			f := fields.Get(j)
			if f.Kind() != protoreflect.MessageKind && f.Kind() != protoreflect.GroupKind {
				continue
			}
			if o := f.ContainingOneof(); o != nil && !o.IsSynthetic() {
				if !slices.Contains(want, string(o.Name())) {
					want = append(want, string(o.Name()))
				}
				continue
			}
			want = append(want, string(f.Name()))
		}
		var got []string
		for _, f := range planOf(mt.New().Interface()).fields {
			got = append(got, string(f.name))
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(want, got) {
			t.Errorf("%s: descriptor message fields %v, plan %v", md.Name(), want, got)
		}
	}
}

// TestSkipFieldNames checks the field names the handlers process
// themselves: a typo would make children() walk a field twice or, worse, a
// renamed field would be skipped silently.
func TestSkipFieldNames(t *testing.T) {
	has := func(m proto.Message, names ...protoreflect.Name) {
		for _, n := range names {
			if m.ProtoReflect().Descriptor().Fields().ByName(n) == nil {
				t.Errorf("%s has no field %s", m.ProtoReflect().Descriptor().Name(), n)
			}
		}
	}
	has(&pg.SelectStmt{}, fWithClause, fLarg, fRarg, fFromClause, fIntoClause, fLockingClause)
	has(&pg.JoinExpr{}, fLarg, fRarg, fUsingClause)
	has(&pg.RangeSubselect{}, fSubquery)
	has(&pg.RangeTableSample{}, fRelation, fMethod)
	has(&pg.CommonTableExpr{}, fCtequery)
	has(&pg.InsertStmt{}, fRelation, fCols, fSelectStmt, fOnConflict, fReturningList, fWithClause)
	has(&pg.UpdateStmt{}, fRelation, fWithClause, fFromClause)
	has(&pg.FuncCall{}, fLocation)
}
