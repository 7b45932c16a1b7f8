from tap_vobiz.tap import TapVobiz

TapVobiz.cli()
