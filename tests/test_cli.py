"""`kinetics stats` prints Table 1 and the rejected-row summary for any annotation files."""

from typer.testing import CliRunner

from kinetics_assets.cli import app
from kinetics_assets.data_files import data_path

runner = CliRunner()


def test_stats_prints_table1_for_the_shipped_file():
    result = runner.invoke(app, ["stats", str(data_path("kinetics400_val.csv"))])
    assert result.exit_code == 0, result.output
    assert "Edition: Kinetics-400 (19906 rows accepted from 1 file(s))" in result.output
    val_row = next(line for line in result.output.splitlines() if "| val" in line)
    assert [cell.strip() for cell in val_row.strip("|").split("|")] == [
        "Kinetics-400", "val", "19906", "400", "49.77", "46", "50",
    ]
    assert "Rejected rows: 0; exact duplicates collapsed: 0" in result.output


def test_stats_summarises_rejected_rows(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        "label,youtube_id,time_start,time_end,split\n"
        "abseiling,0wR5jVB-WPk,0,10,train\n"
        "abseiling,../../etc/pass,0,10,train\n"
        "abseiling,0wR5jVB-WPk,0,10,train\n"
    )
    result = runner.invoke(app, ["stats", str(path), "--edition", "Kinetics-700"])
    assert result.exit_code == 0, result.output
    assert "Rejected rows: 1; exact duplicates collapsed: 1" in result.output
    assert "invalid youtube_id '../../etc/pass'" in result.output
    assert f"first: {path}:3" in result.output
