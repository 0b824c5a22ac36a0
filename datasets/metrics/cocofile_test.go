package metrics

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFile puts content into a fresh file named name and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const validGT = `{"images":[{"id":1},{"id":2}],
"annotations":[{"id":1,"image_id":1,"category_id":3,"bbox":[0,0,10,10],"area":100,"iscrowd":0},
{"id":2,"image_id":2,"category_id":3,"bbox":[5,5,20,20],"area":350.5,"iscrowd":true,"ignore":1,"segmentation":[]}],
"categories":[{"id":3,"name":"three"}],"info":{},"licenses":[]}`

func TestLoadCOCOGT(t *testing.T) {
	gt, err := LoadCOCOGT(writeFile(t, "gt.json", validGT))
	if err != nil {
		t.Fatal(err)
	}
	if len(gt.Images) != 2 || len(gt.Annotations) != 2 || len(gt.Categories) != 1 {
		t.Fatalf("loaded %d images, %d annotations, %d categories; want 2, 2, 1", len(gt.Images), len(gt.Annotations), len(gt.Categories))
	}
	want := Annotation{ID: 2, ImageID: 2, CategoryID: 3, BBox: [4]float64{5, 5, 20, 20}, Area: 350.5, IsCrowd: true}
	if gt.Annotations[1] != want {
		t.Errorf("annotation = %+v, want %+v", gt.Annotations[1], want)
	}
	if gt.Categories[0].Name != "three" {
		t.Errorf("category name = %q, want three", gt.Categories[0].Name)
	}
	// iscrowd may be left out, as mmdet's loader allows.
	gt, err = ParseCOCOGT([]byte(`{"images":[{"id":1}],"annotations":[{"id":1,"image_id":1,"category_id":1,"bbox":[0,0,1,1],"area":1}],"categories":[{"id":1}]}`), "x.json")
	if err != nil {
		t.Fatal(err)
	}
	if gt.Annotations[0].IsCrowd {
		t.Error("a missing iscrowd was read as a crowd")
	}
}

func TestLoadCOCOGTErrors(t *testing.T) {
	ann := func(fields string) string {
		return `{"images":[{"id":1}],"categories":[{"id":1}],"annotations":[{"id":1,"image_id":1,"category_id":1,"bbox":[0,0,1,1],"area":1},` + fields + `]}`
	}
	tests := []struct {
		name    string
		content string
		want    string
	}{
		{"truncated", `{"images":[{"id":1}],` + "\n" + `"annotations":[`, "malformed JSON at line 2"},
		{"syntax error", "{\"images\": [}\n", "malformed JSON at line 1, column 13"},
		{"not an object", `[1,2]`, "the document is a JSON array but must be an object"},
		{"missing annotations", `{"images":[],"categories":[]}`, `the key "annotations" is missing`},
		{"images not a list", `{"images":5,"annotations":[],"categories":[]}`, `"images" is not a list of objects`},
		{"image without id", `{"images":[{"file_name":"a.png"}],"annotations":[],"categories":[]}`, `images[0] has no "id"`},
		{"image id a string", `{"images":[{"id":"a"}],"annotations":[],"categories":[]}`, `images[0]: the key "id" holds a JSON string where an integer is expected`},
		{"duplicate image", `{"images":[{"id":1},{"id":1}],"annotations":[],"categories":[]}`, "images[1] repeats id 1 of images[0]"},
		{"category without id", `{"images":[],"annotations":[],"categories":[{"name":"x"}]}`, `categories[0] has no "id"`},
		{"duplicate category", `{"images":[],"annotations":[],"categories":[{"id":2},{"id":2}]}`, "categories[1] repeats id 2"},
		{"annotation not an object", ann(`7`), "annotations[1] is a JSON number but must be an object"},
		{"missing area", ann(`{"id":2,"image_id":1,"category_id":1,"bbox":[0,0,1,1]}`), `annotations[1]: the key "area" is missing`},
		{"missing bbox", ann(`{"id":2,"image_id":1,"category_id":1,"area":1}`), `annotations[1]: the key "bbox" is missing`},
		{"missing image_id", ann(`{"id":2,"category_id":1,"bbox":[0,0,1,1],"area":1}`), `annotations[1]: the key "image_id" is missing`},
		{"short bbox", ann(`{"id":2,"image_id":1,"category_id":1,"bbox":[0,0,1],"area":1}`), "annotations[1]: annotation id 2 has a bbox of 3 numbers"},
		{"bbox of strings", ann(`{"id":2,"image_id":1,"category_id":1,"bbox":["0",0,1,1],"area":1}`), `annotations[1]: the key "bbox" holds a JSON string where a number is expected`},
		{"fractional id", ann(`{"id":2.5,"image_id":1,"category_id":1,"bbox":[0,0,1,1],"area":1}`), `annotations[1]: the key "id" holds a JSON number 2.5 where an integer is expected`},
		{"bad iscrowd", ann(`{"id":2,"image_id":1,"category_id":1,"bbox":[0,0,1,1],"area":1,"iscrowd":2}`), "iscrowd is 2; it must be 0, 1, false or true"},
		{"unknown image", ann(`{"id":2,"image_id":9,"category_id":1,"bbox":[0,0,1,1],"area":1}`), `annotations[1] (id 2) has image_id 9, which is not in "images"`},
		{"unknown category", ann(`{"id":2,"image_id":1,"category_id":9,"bbox":[0,0,1,1],"area":1}`), `annotations[1] (id 2) has category_id 9, which is not in "categories"`},
		{"duplicate annotation", ann(`{"id":1,"image_id":1,"category_id":1,"bbox":[0,0,1,1],"area":1}`), "annotations[1] (id 1) repeats the id of annotations[0]"},
		{"negative width", ann(`{"id":2,"image_id":1,"category_id":1,"bbox":[0,0,-1,1],"area":1}`), "negative width or height"},
		{"negative area", ann(`{"id":2,"image_id":1,"category_id":1,"bbox":[0,0,1,1],"area":-3}`), "has area -3; area must be a finite number >= 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "bad_gt.json", tc.content)
			_, err := LoadCOCOGT(path)
			if err == nil {
				t.Fatalf("no error, want one containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("error = %q, want one naming %s and containing %q", err, path, tc.want)
			}
		})
	}
	if _, err := LoadCOCOGT(filepath.Join(t.TempDir(), "absent.json")); err == nil || !strings.Contains(err.Error(), "absent.json") {
		t.Errorf("missing file: error = %v, want one naming absent.json", err)
	}
}

func TestLoadResults(t *testing.T) {
	gt, err := ParseCOCOGT([]byte(validGT), "gt.json")
	if err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, "res.json", `[{"image_id":2,"category_id":3,"bbox":[1,2,3.5,4],"score":0.25,"segmentation":[]},
{"image_id":1,"category_id":3,"bbox":[0,0,10,10],"score":1}]`)
	dets, err := LoadResults(path, gt)
	if err != nil {
		t.Fatal(err)
	}
	want := []Detection{
		{ImageID: 2, CategoryID: 3, BBox: [4]float64{1, 2, 3.5, 4}, Score: 0.25},
		{ImageID: 1, CategoryID: 3, BBox: [4]float64{0, 0, 10, 10}, Score: 1},
	}
	if len(dets) != len(want) || dets[0] != want[0] || dets[1] != want[1] {
		t.Errorf("detections = %+v, want %+v", dets, want)
	}
	dets, err = ParseResults([]byte(" [] "), "empty.json", gt)
	if err != nil || len(dets) != 0 {
		t.Errorf("empty list: %v, %v; want no detections and no error", dets, err)
	}
}

func TestLoadResultsErrors(t *testing.T) {
	gt, err := ParseCOCOGT([]byte(validGT), "gt.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		content string
		want    string
	}{
		{"truncated", `[{"image_id":1,`, "malformed JSON at line 1"},
		{"object", `{"image_id":1}`, "the document is a JSON object but must be a list of detections"},
		{"null", `null`, "the document is null"},
		{"entry not an object", `[{"image_id":1,"category_id":3,"bbox":[0,0,1,1],"score":1},"x"]`, "entry 1 is a JSON string but must be an object"},
		{"missing score", `[{"image_id":1,"category_id":3,"bbox":[0,0,1,1]}]`, `entry 0: the key "score" is missing`},
		{"missing bbox", `[{"image_id":1,"category_id":3,"score":1}]`, `entry 0: the key "bbox" is missing`},
		{"missing image_id", `[{"category_id":3,"bbox":[0,0,1,1],"score":1}]`, `entry 0: the key "image_id" is missing`},
		{"long bbox", `[{"image_id":1,"category_id":3,"bbox":[0,0,1,1,5],"score":1}]`, "entry 0 has a bbox of 5 numbers"},
		{"score a string", `[{"image_id":1,"category_id":3,"bbox":[0,0,1,1],"score":"high"}]`, `entry 0: the key "score" holds a JSON string where a number is expected`},
		{"unknown image", `[{"image_id":1,"category_id":3,"bbox":[0,0,1,1],"score":1},{"image_id":77,"category_id":3,"bbox":[0,0,1,1],"score":1}]`, `entry 1: image_id 77 is not an image of the ground truth "gt.json"`},
		{"unknown category", `[{"image_id":1,"category_id":4,"bbox":[0,0,1,1],"score":1}]`, `entry 0: category_id 4 is not a category of the ground truth "gt.json"`},
		{"negative height", `[{"image_id":1,"category_id":3,"bbox":[0,0,1,-2],"score":1}]`, "entry 0: bbox [0 0 1 -2] has a negative width or height"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "bad_results.json", tc.content)
			_, err := LoadResults(path, gt)
			if err == nil {
				t.Fatalf("no error, want one containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("error = %q, want one naming %s and containing %q", err, path, tc.want)
			}
		})
	}
	if _, err := LoadResults(filepath.Join(t.TempDir(), "absent.json"), gt); err == nil || !strings.Contains(err.Error(), "absent.json") {
		t.Errorf("missing file: error = %v, want one naming absent.json", err)
	}
}

func TestLineColumn(t *testing.T) {
	data := []byte("ab\ncde\nf")
	for _, tc := range []struct {
		offset       int64
		line, column int
	}{{0, 1, 1}, {2, 1, 3}, {3, 2, 1}, {6, 2, 4}, {7, 3, 1}, {99, 3, 2}} {
		if l, c := lineColumn(data, tc.offset); l != tc.line || c != tc.column {
			t.Errorf("lineColumn(%d) = %d:%d, want %d:%d", tc.offset, l, c, tc.line, tc.column)
		}
	}
}
